"""The selective-scan kernels against their NumPy twin, on one thread and split by batch rows."""

import numpy as np
import pytest

from neural_arch.backend import kernels, threads
from neural_arch.backend.kernels import scan

pytestmark = pytest.mark.usefixtures("jit")

Bt, L, D, N = 5, 11, 3, 4


def inputs(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    u, gy = rng.standard_normal((2, Bt, L, D))
    delta = rng.uniform(0.05, 1.0, (Bt, L, D))
    A = -rng.uniform(0.2, 2.0, (D, N))
    B, C = rng.standard_normal((2, Bt, L, N))
    h0 = rng.standard_normal((Bt, D, N))
    return [a.astype(dtype) for a in (gy, u, delta, A, B, C, h0)]


def test_kernels_match_the_twin_on_one_thread_and_split(monkeypatch):
    gy, *args = inputs()
    ref_y, ref_last = scan.scan_forward.twin(*args)
    ref_grads = scan.scan_backward.twin(gy, *args)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    for threshold in (1 << 40, 0):  # one thread, then the batch rows split among three (dA in partial sums)
        monkeypatch.setattr(threads.policy, "kernel_min_elements", threshold)
        before = kernels.calls["scan_forward"], kernels.calls["scan_backward"]
        y, last = scan.scan_forward(*args)
        np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(last, ref_last, rtol=1e-5, atol=1e-5)
        for name, got, want in zip(("du", "ddelta", "dA", "dB", "dC"), scan.scan_backward(gy, *args), ref_grads):
            assert got.shape == want.shape and got.dtype == np.float32, name
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)
        assert (kernels.calls["scan_forward"], kernels.calls["scan_backward"]) == (before[0] + 1, before[1] + 1)


def test_float64_and_empty_sequences_take_the_twin():
    before = dict(kernels.calls)
    gy, *args = inputs(np.float64)
    y, last = scan.scan_forward(*args)
    assert y.dtype == last.dtype == np.float64
    gy, u, delta, A, B, C, h0 = inputs()
    y, last = scan.scan_forward(u[:, :0], delta[:, :0], A, B[:, :0], C[:, :0], h0)  # no tokens: the state stays
    assert y.shape == (Bt, 0, D) and np.array_equal(last, h0)
    assert dict(kernels.calls) == before


def test_both_implementations_are_documented():
    for fn in (scan.scan_forward, scan.scan_backward):
        assert callable(fn.kernel) and callable(fn.twin) and fn.__doc__
