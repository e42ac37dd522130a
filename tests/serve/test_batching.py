"""The Batcher's worker thread survives whatever a batch raises, and says when it cannot go on.

A real Batcher with a run_batch written here; the futures are awaited on a real event loop. A worker
that died or hung would leave the awaited futures pending: ``_answers`` gives up after ``HANG_S`` (a
bound on a hang, far above any batch's time here, not a timing assertion).
"""

import asyncio
import threading
import time

import pytest

from neural_arch.serve.batching import Batcher, QueueFull

HANG_S = 30.0


def _answers(batcher: Batcher, payloads: list) -> list:
    """Each payload's result, or the exception its future got, as the event loop sees them."""
    async def go():
        futures = batcher.submit(payloads)
        return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), HANG_S)

    return asyncio.run(go())


def _doubling_unless(bad: set, error: BaseException):
    def run(payloads):
        if bad & set(payloads):
            raise error
        return [2 * p for p in payloads]

    return run


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), asyncio.CancelledError(), ValueError("bad")])
def test_a_batch_that_raises_fails_its_requests_and_the_worker_goes_on(error):
    batcher = Batcher(_doubling_unless({-1}, error), max_wait_s=0.0)
    try:
        (got,) = _answers(batcher, [-1])
        # an Exception reaches the request as itself; anything else as a RuntimeError naming it (awaited on
        # the event loop as itself, a SystemExit or CancelledError would stop the server, not the request)
        assert isinstance(got, Exception)
        assert got is error if isinstance(error, Exception) else type(error).__name__ in str(got)
        assert _answers(batcher, [1, 2]) == [2, 4]
        assert batcher.problem() is None
    finally:
        batcher.close(HANG_S)


def test_failing_metrics_do_not_stop_the_worker():
    def on_batch(size, seconds):
        raise RuntimeError("a metrics backend that fails")

    batcher = Batcher(_doubling_unless(set(), ValueError()), max_wait_s=0.0, on_batch=on_batch)
    try:
        assert _answers(batcher, [1]) == [2]
        assert _answers(batcher, [3]) == [6]
    finally:
        batcher.close(HANG_S)


def test_a_result_list_of_the_wrong_length_fails_every_item_of_the_batch():
    batcher = Batcher(lambda payloads: [0], max_wait_s=0.0)
    try:
        got = _answers(batcher, [1, 2, 3])
        assert all(isinstance(g, RuntimeError) and "1 results for 3 items" in str(g) for g in got)
        assert _answers(batcher, [5]) == [0]
    finally:
        batcher.close(HANG_S)


def test_abandoned_items_do_not_keep_the_queue_full():
    """Requests that gave up (their futures cancelled: deadline, disconnect) while the worker was busy
    must not leave the queue full once it can take work again."""
    release = threading.Event()

    def run(payloads):
        release.wait(HANG_S)
        return list(payloads)

    batcher = Batcher(run, max_batch_size=1, max_wait_s=0.0, max_queue=4)

    async def go():
        first = batcher.submit([0])  # taken by the worker, which then waits
        while batcher.depth():
            await asyncio.sleep(0.001)
        waiting = batcher.submit([1, 2, 3, 4])
        with pytest.raises(QueueFull):
            batcher.submit([5])
        for f in waiting:
            f.cancel()
        later = batcher.submit([6, 7])  # the cancelled items make room
        release.set()
        return await asyncio.wait_for(asyncio.gather(*first, *later), HANG_S)

    try:
        assert asyncio.run(go()) == [0, 6, 7]
    finally:
        release.set()
        batcher.close(HANG_S)


def test_a_forward_that_does_not_return_is_reported():
    release = threading.Event()
    started = threading.Event()

    def run(payloads):
        started.set()
        release.wait(HANG_S)
        return list(payloads)

    batcher = Batcher(run, max_wait_s=0.0)

    async def go():
        futures = batcher.submit([1])
        assert await asyncio.get_running_loop().run_in_executor(None, started.wait, HANG_S)
        assert batcher.problem(stuck_after_s=None) is None
        assert "has run for" in batcher.problem(stuck_after_s=0.0)
        release.set()
        return await asyncio.wait_for(asyncio.gather(*futures), HANG_S)

    try:
        assert asyncio.run(go()) == [1]
        assert batcher.problem(stuck_after_s=0.0) is None  # idle again
    finally:
        release.set()
        batcher.close(HANG_S)


def test_a_worker_that_stopped_fails_what_is_queued_and_refuses_work(caplog):
    """Nothing a batch raises ends the worker now; a failure of its loop itself still could (a bug),
    simulated by a _take that raises. The item queued fails at once, problem() (/readyz) names the
    error, it is logged, and submit refuses new items instead of queueing work that could only time out."""
    clean = Batcher(lambda payloads: list(payloads), max_wait_s=0.0)
    clean.close(HANG_S)
    assert clean.problem() is None  # a worker stopped by close() is not a problem

    class Broken(Batcher):
        def _take(self):
            with self._cond:
                while not self._items:
                    self._cond.wait()
            raise MemoryError("the loop itself failed")

    broken = Broken(lambda payloads: list(payloads), max_wait_s=0.0)

    async def go():
        futures = broken.submit(["queued"])
        got = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), HANG_S)
        with pytest.raises(QueueFull, match="worker stopped"):
            broken.submit(["later"])
        return got

    (got,) = asyncio.run(go())
    assert isinstance(got, QueueFull) and "MemoryError" in str(got)
    assert "MemoryError" in broken.problem()
    assert "worker thread" in caplog.text


def test_readyz_says_when_a_forward_has_run_past_the_deadline():
    """A real server whose model blocks: the request gets its 504 at the deadline, /readyz answers 503
    naming the stuck forward (a load balancer stops sending work), and 200 again once it returns."""
    import httpx
    import numpy as np
    from serve_helpers import live_server

    from neural_arch.serve import ServedModel, ServeSettings

    release = threading.Event()

    def run(texts):
        if "block" in texts:
            release.wait(HANG_S)
        return [(np.ones(2, np.float32), 1) for _ in texts]

    served = ServedModel("blocker", "embeddings", model=None, embedding_dim=2, run_batch=run)
    with live_server(served, ServeSettings(timeout_s=0.5, length_groups=False)) as (url, _):
        try:
            with httpx.Client(base_url=url, timeout=HANG_S) as c:
                assert c.get("/readyz").status_code == 200
                assert c.post("/v1/embeddings", json={"input": "block"}).status_code == 504
                while (stuck := c.get("/readyz")).status_code == 200:  # until the forward is past 0.5 s
                    time.sleep(0.01)
                assert stuck.status_code == 503 and "has run for" in stuck.json()["error"]["message"]
                release.set()
                while c.get("/readyz").status_code != 200:  # the worker finishing its forward
                    time.sleep(0.01)
                assert c.post("/v1/embeddings", json={"input": "fine"}).status_code == 200
        finally:
            release.set()
