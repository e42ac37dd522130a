"""Dynamic batching: items from many requests, grouped and run as one forward on a worker thread.

A request hands its items (one per text or image) to ``Batcher.submit`` on the event loop and
awaits one future per item. The worker thread takes the oldest item, waits at most ``max_wait_s``
for more to arrive (up to ``max_batch_size``), runs ``run_batch`` on the group, and settles the
futures through the loop's thread-safe callback. The event loop therefore never runs the model.

The queue is bounded: ``submit`` raises ``QueueFull`` at once when the items would not fit (the
app answers 503), so memory stays bounded under any load. Items whose request gave up (deadline,
disconnect) are cancelled futures and are skipped when their turn comes.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["Batcher", "QueueFull"]


class QueueFull(Exception):
    """The queue cannot take the request now (full, or the server is shutting down)."""


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


class Batcher:
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
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"neural-arch-{name}", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        """Items waiting (not yet taken into a batch)."""
        return len(self._items)

    def submit(self, payloads: Sequence) -> list[asyncio.Future]:
        """Queue every payload or none; one future per payload. Call on the event loop."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down")
            if len(self._items) + len(payloads) > self.max_queue:
                raise QueueFull(f"the queue holds {len(self._items)} of {self.max_queue} items")
            items = [_Item(p, loop.create_future(), loop) for p in payloads]
            self._items.extend(items)
            self._cond.notify()
        return [it.future for it in items]

    def close(self, timeout: float | None = None) -> None:
        """Take no more items, finish those queued, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[_Item] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None  # closed and drained
            deadline = time.monotonic() + self.max_wait_s
            while len(self._items) < self.max_batch_size and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch_size, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            live = [it for it in batch if not it.future.done()]
            if not live:
                continue
            start = time.perf_counter()
            try:
                results = list(self.run_batch([it.payload for it in live]))
            except Exception as e:  # noqa: BLE001 - handed to every request of the batch
                results = [e] * len(live)
            if self.on_batch is not None:
                self.on_batch(len(live), time.perf_counter() - start)
            for it, result in zip(live, results):
                it.loop.call_soon_threadsafe(_settle, it.future, result)
