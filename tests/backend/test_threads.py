"""threads._Helper: the hand-off between the caller and a helper thread, polling and on locks.

Behaviour only: every job runs once, its result is right, errors reach the caller, and a product
is handed over inside the poll when the helper is known to be polling. How often a race is won
(the share of products run in the poll under load) is a rate, measured by
``python -m benchmarks isolation``, never asserted here."""

import threading
import time

import numpy as np
import pytest

from neural_arch.backend import gemm, threads

spin = threads._spin_module() if threads.blas_is_ours() else None
HAND_OFFS = [pytest.param(None, id="locks only")]
if spin is not None:
    HAND_OFFS.append(pytest.param(spin, id="polling"))


def _fill(out, value, pause):
    if pause:
        time.sleep(pause)  # longer than the caller polls: it must fall back to the lock
    out[:] = value


@pytest.mark.parametrize("hand_off", HAND_OFFS)
@pytest.mark.parametrize("spin_us", [2000, 1])  # 1 us: the helper's poll runs out, it sleeps between jobs
def test_every_job_runs_once_and_is_seen_finished(hand_off, spin_us, monkeypatch):
    monkeypatch.setattr(threads.policy, "spin_us", spin_us)
    helper = threads._Helper(hand_off)
    out = np.zeros(4)
    rng = np.random.default_rng(0)
    for job in range(1, 60):
        pause = 0.002 if job % 20 == 0 else 0.0
        helper.start(_fill, (out, job, pause))
        assert helper.join() is None
        assert (out == job).all()  # the caller sees the helper's writes once join returns
        if rng.random() < 0.2:
            time.sleep(0.003)  # gaps longer than a poll
    if hand_off is not None:
        assert list(helper._state[:2]) in ([59, 58], [59, 59])  # 59 started; the last publishes on its next poll


needs_product_polls = pytest.mark.skipif(spin is None or not threads._gemm_address(np.dtype(np.float32)),
                                         reason="needs the polls and NumPy's BLAS cblas_sgemm64_")


def _product(rng, job):
    dtype = np.float32 if job % 3 else np.float64
    a = rng.standard_normal((9, 7)).astype(dtype)
    b = rng.standard_normal((5, 7)).astype(dtype).T  # a transposed operand: BLAS's Trans
    out = np.empty((9, 8), dtype)[:, :5] if job % 4 == 0 else np.empty((9, 5), dtype)  # ldc 8 or 5
    return a, b, out


def _assert_is_product(out, a, b):
    """out is a @ b up to rounding: each element within 1e-5 of sum_k |a_ik b_kj| (the bound on a dot
    product's rounding error; relative to the element itself, a cancelling sum near 0 fails by chance,
    as BLAS and the compiled product add in different orders)."""
    assert np.all(np.abs(out - a @ b) <= 1e-5 * (np.abs(a) @ np.abs(b)))


@needs_product_polls
@pytest.mark.parametrize(("spin_us", "yield_after_us"), [(2000, 50), (2000, 0), (1, 50)])
def test_products_and_python_jobs_mixed_give_right_results_either_way(spin_us, yield_after_us, monkeypatch):
    """A polling helper runs products itself (spin.post_product); when its poll has run out the
    product goes over the locks as a Python job. Mixed with Python jobs, in random order and gaps,
    every result is right and the counters agree, whichever way each product went, and whether the
    poll yields its core from the start (0) or only after its first polls."""
    monkeypatch.setattr(threads.policy, "spin_us", spin_us)
    monkeypatch.setattr(threads.policy, "spin_yield_after_us", yield_after_us)
    helper = threads._Helper(spin)
    rng = np.random.default_rng(0)
    for job in range(1, 120):
        if rng.random() < 0.7:
            a, b, out = _product(rng, job)
            if not helper.post_product(a, b, out):
                helper.start(lambda p, q, o: np.matmul(p, q, out=o), (a, b, out))
            assert helper.join() is None
            _assert_is_product(out, a, b)
        else:
            filled = np.zeros(4)
            helper.start(_fill, (filled, job, 0.0))
            assert helper.join() is None and (filled == job).all()
        if rng.random() < 0.2:
            time.sleep(0.003)  # longer than a 1 us poll: the next product goes over the locks
    assert helper._state[0] == 119 and helper._state[1] in (118, 119)
    a, b, _ = _product(rng, 1)
    assert not helper.post_product(a, b, np.empty((8, 5), a.dtype))  # wrong shape: the Python path raises


def _wait_until_polling(helper):
    """Until the helper is in its poll (state[2] == 1). A wait, not a timing: bounded only so that a
    broken helper fails the test instead of hanging it."""
    deadline = time.monotonic() + 60
    while helper._state[2] != 1:
        assert time.monotonic() < deadline, "the helper never went back to polling"
        time.sleep(0)


@needs_product_polls
def test_a_product_posted_to_a_polling_helper_runs_in_the_poll(monkeypatch):
    """Forced: the helper polls for a minute after each job and the caller posts only once it sees
    the helper polling, so the hand-off inside the poll must happen, every time, with the right result."""
    monkeypatch.setattr(threads.policy, "spin_us", 60_000_000)
    helper = threads._Helper(spin)
    rng = np.random.default_rng(1)
    try:
        for job in range(1, 6):
            _wait_until_polling(helper)
            a, b, out = _product(rng, job)
            assert helper.post_product(a, b, out)
            assert helper.join() is None
            _assert_is_product(out, a, b)
        assert list(helper._state[:2]) == [5, 5]
    finally:
        monkeypatch.setattr(threads.policy, "spin_us", 1)  # the next poll is short: the helper then sleeps
        helper.start(_fill, (np.zeros(1), 0.0, 0.0))  # a Python job ends the long poll
        helper.join()


@needs_product_polls
def test_a_claim_made_before_the_helper_polls_again_is_kept():
    """The interleaving that stalled the embeddings server under overload (NOTES.md): the helper publishes
    a product's result and is descheduled before its next poll; meanwhile the caller sees the result,
    claims the helper (still marked polling) and posts its next product; then the helper polls again.
    It must run that product. It used to mark itself polling again over the claim, read the posted
    counter as a Python job and sleep on its lock, while the caller waited for the product for ever.
    Played on this thread in that order: each side is called as the caller and the helper call it."""
    addr = threads._gemm_address(np.dtype(np.float32))
    a, b, out = _product(np.random.default_rng(2), 1)
    state, job = np.array([0, 0, 1], np.int64), np.zeros(16, np.int64)  # polling, nothing started or finished
    assert spin.post_product(state, job, a, b, out, addr)  # the caller claims and posts
    assert list(state) == [1, 0, 2]
    finished = spin.serve(state, 0, 1000, 1000, 0, job)  # the helper polls again
    assert finished == 1 and list(state) == [1, 1, 0]  # ran it, published it, then its poll ran out
    _assert_is_product(out, a, b)


def test_back_to_back_products_under_gil_contention_all_finish():
    """The hand-off under the load that stalled the server: Python threads competing for the GIL (an
    event loop at full load) while one thread runs split products back to back, most of them inside the
    helpers' poll. Every product finishes with the right result. (The lost claim of the test above is a
    window of a few instructions: this cannot force it, it exercises the rest of the hand-off.)"""
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            sum(range(1000))

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 384), dtype=np.float32), rng.standard_normal((384, 384), dtype=np.float32)
    expected = a @ b
    others = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    for t in others:
        t.start()
    try:
        for i in range(300):
            got = gemm.matmul(a, b)
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
            if i % 50 == 0:
                time.sleep(0.005)  # idle long enough for the helpers' poll to run out: the lock path too
    finally:
        stop.set()
        for t in others:
            t.join()


@pytest.mark.parametrize("hand_off", HAND_OFFS)
def test_a_helper_error_reaches_the_caller_and_the_helper_survives(hand_off):
    helper = threads._Helper(hand_off)

    def boom():
        raise ValueError("bad job")

    helper.start(boom, ())
    err = helper.join()
    assert isinstance(err, ValueError) and str(err) == "bad job"
    out = np.zeros(2)
    helper.start(_fill, (out, 7.0, 0.0))
    assert helper.join() is None and (out == 7).all()


def test_run_split_uses_polling_helpers_when_blas_is_ours():
    if spin is None:
        pytest.skip("numba off, or BLAS on its own threads")
    outs = [np.zeros(3) for _ in range(threads.policy.num_threads)]
    threads.run_split(_fill, [(o, 5.0, 0.0) for o in outs])
    assert all((o == 5).all() for o in outs)
    assert all(h._spin is spin for h in threads._helpers)


@needs_product_polls
def test_post_product_declines_vectors_and_bad_layouts():
    """A vector times a matrix stays with NumPy (which calls ?gemv, the routine made for it); so do
    operands BLAS cannot read in place. Nothing is claimed or posted then."""
    addr = threads._gemm_address(np.dtype(np.float32))
    a, b = np.ones((4, 6), np.float32), np.ones((6, 5), np.float32)
    cases = [(a[:1], b, np.empty((1, 5), np.float32)),  # a vector
             (a, b[:, :1], np.empty((4, 1), np.float32)),  # matrix times vector
             (a[:, ::2], b[:3], np.empty((4, 5), np.float32)),  # no unit stride
             (a, b, np.empty((5, 4), np.float32).T)]  # a column-major output
    for x, y, out in cases:
        state, job = np.array([0, 0, 1]), np.zeros(16, np.int64)
        assert not spin.post_product(state, job, x, y, out, addr)
        assert list(state) == [0, 0, 1]
    state = np.array([0, 0, 1])
    assert spin.post_product(state, np.zeros(16, np.int64), a, b, np.empty((4, 5), np.float32), addr)
    assert list(state) == [1, 0, 2]  # claimed and posted (no helper here to run it)


@pytest.mark.parametrize("hand_off", HAND_OFFS)
def test_a_helper_keeps_no_reference_to_a_finished_job(hand_off, monkeypatch):
    """A finished job's arrays are the caller's alone: a view kept by the helper would keep an op's output
    alive and make the engine copy it instead of adopting it as a leaf's gradient."""
    import sys  # noqa: PLC0415

    monkeypatch.setattr(threads, "_spin_module", lambda: hand_off)
    monkeypatch.setattr(threads, "_helpers", [])
    out = np.zeros(64)
    threads.run_split(_fill, [(out[:32], 1.0, 0), (out[32:], 2.0, 0)])
    np.testing.assert_array_equal(out, [1.0] * 32 + [2.0] * 32)
    assert sys.getrefcount(out) == 2  # this name and getrefcount's argument
