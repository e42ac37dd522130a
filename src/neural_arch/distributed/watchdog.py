"""A watchdog thread per rank: a lost peer ends this rank with a message naming it, never a hang.

At :func:`~neural_arch.distributed.init_process_group` every rank shares its
host name and process id. A daemon thread then checks, every ``interval``
seconds, that the peers on its own host are still alive (``os.kill(pid, 0)``:
no message, no MPI call, so it works while the main thread is blocked inside
MPI). When one is gone it prints which rank was lost and ends this process
with exit status 1 (``os._exit``: the main thread may be stuck in a collective
that will never finish, so there is nothing to unwind).

Peers on other hosts cannot be checked this way: there the launcher ends the
job (Open MPI's ``mpiexec`` and Slurm's ``srun`` kill every rank when one dies
abnormally) and, as a backstop, a collective that waits longer than
``NEURAL_ARCH_COLLECTIVE_TIMEOUT`` seconds raises a DistributedError.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

LOST_RANK_EXIT_CODE = 1


class Watchdog:
    """Checks the same-host peers listed in ``peers`` (``[(host, pid), ...]`` indexed by rank)."""

    def __init__(self, rank: int, peers: list, interval: float = 0.5):
        self.rank = rank
        host = socket.gethostname()
        self.local = [(r, pid) for r, (h, pid) in enumerate(peers) if h == host and r != rank]
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"neural-arch-watchdog-{rank}", daemon=True)

    def start(self) -> Watchdog:
        if self.local:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def lost(self) -> list:
        """The ranks (with their pids) on this host that are no longer running."""
        gone = []
        for r, pid in self.local:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                gone.append((r, pid))
            except PermissionError:  # alive, owned by someone else
                pass
        return gone

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            gone = self.lost()
            # a grace second: a peer that leaves after the final barrier of destroy_process_group is not lost
            if gone and not self._stop.wait(1.0):
                names = ", ".join(f"rank {r} (pid {pid})" for r, pid in gone)
                sys.stderr.write(f"neural-arch: lost {names}: it exited or was killed; rank {self.rank} stops too "
                                 f"(exit status {LOST_RANK_EXIT_CODE}). Resume from the last checkpoint.\n")
                sys.stderr.flush()
                os._exit(LOST_RANK_EXIT_CODE)
