"""Dynamic batching: items from many requests, grouped and run as one forward on a worker thread.

A request hands its items (one per text or image) to ``Batcher.submit`` on the event loop and
awaits one future per item. The worker thread takes the oldest item, waits at most ``max_wait_s``
for more to arrive (up to ``max_batch_size``), runs ``run_batch`` on the group, and settles the
futures through the loop's thread-safe callback. The event loop therefore never runs the model.

The queue is bounded: ``submit`` raises ``QueueFull`` at once when the items would not fit (the
app answers 503), so memory stays bounded under any load. Items whose request gave up (deadline,
disconnect) are cancelled futures: they are skipped when their turn comes, and dropped from the queue
when it looks full, so abandoned items never keep live requests out.

Nothing the model or the metrics raise ends the worker thread: every failure goes to the futures of
its batch. Should the thread end or hang anyway, :meth:`WorkerThread.problem` says so (``/readyz``
answers 503 with it) and ``submit`` refuses new work with the reason, instead of queueing items that
could only time out.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["Batcher", "QueueFull", "WorkerThread"]

_log = logging.getLogger("neural_arch.serve")


class QueueFull(Exception):
    """The queue cannot take the request now (full, the server is shutting down, or its worker stopped)."""


def as_exception(error: BaseException) -> Exception:
    """``error`` as an Exception a request can be failed with. A BaseException that is not an Exception
    (SystemExit, KeyboardInterrupt, a CancelledError from inside the model) must not reach the event
    loop as itself: awaiting it there would stop the server, not the one request."""
    if isinstance(error, Exception):
        return error
    wrapped = RuntimeError(f"the model raised {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


class WorkerThread:
    """The thread that runs the model, and what ``/readyz`` needs to know about it.

    ``problem(stuck_after_s)`` is None while the thread is healthy, else why not: it ended (an error
    that escaped the worker's loop, logged with its traceback), or one forward has run for longer
    than ``stuck_after_s`` (a forward that never returns would otherwise look like a full queue)."""

    def __init__(self, work: Callable[[], None], name: str):
        self._work_fn = work
        self._busy_since: float | None = None  # monotonic time the current forward began; None: idle
        self.stopped: BaseException | None = None  # what ended the thread before close()
        self._cond = threading.Condition()  # guards the subclass's queue and _closed
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._work_fn()
        except BaseException as e:  # noqa: BLE001 - the thread is gone: say so instead of dying silently
            self.stopped = e
            _log.critical("the model's worker thread %s stopped; /readyz now answers 503 and requests are "
                          "refused until the server restarts", self._thread.name, exc_info=e)
            self._on_stopped(as_exception(e))

    def _on_stopped(self, error: Exception) -> None:
        """Fail what is still queued (the worker will never run it)."""

    def _busy(self, busy: bool) -> None:
        self._busy_since = time.monotonic() if busy else None

    def problem(self, stuck_after_s: float | None = None) -> str | None:
        """None when the worker is healthy; else a sentence saying what is wrong."""
        if self.stopped is not None:
            return f"the model's worker stopped ({type(self.stopped).__name__}: {self.stopped})"
        if not self._thread.is_alive() and self._thread.ident is not None and not self._closed:
            return "the model's worker stopped"
        since = self._busy_since
        if stuck_after_s is not None and since is not None and time.monotonic() - since > stuck_after_s:
            return f"one forward of the model has run for {time.monotonic() - since:.0f} s"
        return None

    def _refuse_if_closed(self) -> None:
        """Raise ``QueueFull`` when no new work can be taken: closing, or the worker is gone. Under the lock."""
        if self._closed:
            raise QueueFull("the server is shutting down")
        if self.stopped is not None or not self._thread.is_alive():
            raise QueueFull(self.problem() or "the model's worker stopped")

    def _gather(self, waiting) -> None:
        """Under the lock: let ``waiting`` grow to ``max_batch_size`` for at most ``max_wait_s`` (or until close)."""
        deadline = time.monotonic() + self.max_wait_s
        while len(waiting) < self.max_batch_size and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._cond.wait(left)

    def close(self, timeout: float | None = None) -> None:
        """Take no more work, finish what is queued, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


class _Item:
    __slots__ = ("future", "loop", "payload")

    def __init__(self, payload, future: asyncio.Future, loop: asyncio.AbstractEventLoop):
        self.payload, self.future, self.loop = payload, future, loop


def _settle(future: asyncio.Future, result) -> None:
    if future.done():  # cancelled meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class Batcher(WorkerThread):
    """Runs ``run_batch(payloads) -> results`` (one result, or an exception, per payload) on batches.

    Args:
        run_batch: called on the worker thread with up to ``max_batch_size`` payloads.
        max_batch_size: the most items in one call.
        max_wait_s: how long the oldest item waits for others before its batch runs anyway.
        max_queue: the most items waiting; beyond it ``submit`` raises ``QueueFull``.
        on_batch: called (on the worker) with each batch's size and its run time in seconds, for metrics.
    """

    def __init__(self, run_batch: Callable[[list], Sequence], max_batch_size: int = 32, max_wait_s: float = 0.005,
                 max_queue: int = 256, on_batch: Callable[[int, float], None] | None = None, name: str = "batcher"):
        if max_batch_size < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("Batcher: max_batch_size and max_queue must be >= 1 and max_wait_s >= 0")
        self.run_batch, self.max_batch_size, self.max_wait_s, self.max_queue = run_batch, max_batch_size, max_wait_s, \
            max_queue
        self.on_batch = on_batch
        self._items: collections.deque[_Item] = collections.deque()
        super().__init__(self._work, f"neural-arch-{name}")
        self._thread.start()

    def depth(self) -> int:
        """Items waiting (not yet taken into a batch)."""
        return len(self._items)

    def submit(self, payloads: Sequence) -> list[asyncio.Future]:
        """Queue every payload or none; one future per payload. Call on the event loop."""
        loop = asyncio.get_running_loop()
        with self._cond:
            self._refuse_if_closed()
            if len(self._items) + len(payloads) > self.max_queue:
                self._drop_abandoned()
            if len(self._items) + len(payloads) > self.max_queue:
                raise QueueFull(f"the queue holds {len(self._items)} of {self.max_queue} items")
            items = [_Item(p, loop.create_future(), loop) for p in payloads]
            self._items.extend(items)
            self._cond.notify()
        return [it.future for it in items]

    def _drop_abandoned(self) -> None:
        """Forget queued items whose request gave up (deadline, disconnect): they hold places in the queue
        that live requests could use. Called under the lock, only when the queue looks full."""
        self._items = collections.deque(it for it in self._items if not it.future.done())

    def _on_stopped(self, error: Exception) -> None:
        error = QueueFull(self.problem() or str(error))
        with self._cond:
            items, self._items = list(self._items), collections.deque()
        for it in items:
            it.loop.call_soon_threadsafe(_settle, it.future, error)

    def _take(self) -> list[_Item] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None  # closed and drained
            self._gather(self._items)
            n = min(self.max_batch_size, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            live = [it for it in batch if not it.future.done()]
            if live:
                self._forward(live)

    def _forward(self, live: list[_Item]) -> None:
        """One forward for ``live``; every item's future gets its result or the error, whatever fails."""
        start = time.perf_counter()
        self._busy(True)
        try:
            results = list(self.run_batch([it.payload for it in live]))
            if len(results) != len(live):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(live)} items")
        except BaseException as e:  # noqa: BLE001 - handed to every request of the batch, never ends the worker
            results = [as_exception(e)] * len(live)
        finally:
            self._busy(False)
        if self.on_batch is not None:
            try:
                self.on_batch(len(live), time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - metrics must not cost the requests their answers
                _log.exception("recording a batch's metrics failed")
        for it, result in zip(live, results):
            it.loop.call_soon_threadsafe(_settle, it.future, result)
