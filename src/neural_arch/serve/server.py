"""Running the app on uvicorn, with a shutdown that drains.

On SIGTERM (or SIGINT) uvicorn closes its listening socket, lets the requests in flight finish
(at most ``timeout_s`` plus a margin), then runs the app's lifespan exit, which finishes what is
still queued and stops the worker. Then uvicorn re-raises the signal, so the process ends with the
status "terminated by SIGTERM" (143 in a shell), as process managers expect. ``/readyz`` answers
503 from the signal on, so a load balancer stops sending work.
"""

from __future__ import annotations

import resource

import uvicorn

from neural_arch.serve.app import ServeSettings, create_app
from neural_arch.serve.served import ServedModel

__all__ = ["DrainingServer", "make_server", "raise_open_files_limit", "run_server"]


class DrainingServer(uvicorn.Server):
    """uvicorn's server, marking the app as draining when the exit signal arrives."""

    def __init__(self, config: uvicorn.Config, app):
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig, frame) -> None:
        self._app.state.serve.draining = True
        super().handle_exit(sig, frame)


def make_server(served: ServedModel, settings: ServeSettings | None = None, host: str = "127.0.0.1",
                port: int = 8000, log_level: str = "info") -> DrainingServer:
    """A uvicorn server for ``served`` (not started: ``.run()`` blocks, ``.serve(sockets)`` is a coroutine)."""
    settings = settings or ServeSettings()
    app = create_app(served, settings)
    # backlog: connections the kernel holds while the event loop is busy (uvicorn's default is 2048)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=settings.timeout_s + 5, lifespan="on",
                            timeout_keep_alive=max(1, round(settings.keep_alive_s)), backlog=4096)
    return DrainingServer(config, app)


def raise_open_files_limit() -> None:
    """The process's soft limit of open files up to its hard limit. A server holds a socket per connection,
    and the common soft limit (1,024) is reached under load long before the hard one: past it the event
    loop cannot accept connections (EMFILE) and clients wait in the listen queue or are dropped."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_server(served: ServedModel, settings: ServeSettings | None = None, host: str = "127.0.0.1",
               port: int = 8000, log_level: str = "info") -> None:
    """Serve until SIGTERM / SIGINT, then drain and return (the open-files limit raised first)."""
    raise_open_files_limit()
    make_server(served, settings, host, port, log_level).run()
