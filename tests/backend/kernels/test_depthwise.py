"""The depthwise conv kernels against their NumPy twin, on one thread and split by channels."""

import numpy as np
import pytest

from neural_arch.backend import kernels, threads
from neural_arch.backend.kernels import depthwise

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


@pytest.mark.parametrize("stride, dilation, k", [((1, 1), (1, 1), 3), ((2, 2), (1, 2), 3), ((2, 1), (2, 1), 3),
                                                 ((2, 2), (1, 1), 5), ((1, 1), (1, 1), 5), ((3, 2), (1, 1), 3)])
def test_kernels_match_the_twin_on_one_thread_and_split(stride, dilation, k, monkeypatch):
    """Odd and even padded sizes (11 x 10), unit and other strides, 3x3 and 5x5 taps, dilation."""
    xp = rng.standard_normal((2, 5, 11, 10)).astype(f32)
    w = rng.standard_normal((5, k, k)).astype(f32)
    out_hw = ((11 - (k - 1) * dilation[0] - 1) // stride[0] + 1, (10 - (k - 1) * dilation[1] - 1) // stride[1] + 1)
    g = rng.standard_normal((2, 5) + out_hw).astype(f32)
    ref_y = depthwise.depthwise_forward.twin(xp, w, out_hw, stride, dilation)
    ref_gx, ref_gw = depthwise.depthwise_backward.twin(g, xp, w, stride, dilation, True, True)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    for threshold in (1 << 40, 0):  # one thread, then the channels split among three (c0 offsets)
        monkeypatch.setattr(threads.policy, "kernel_min_elements", threshold)
        before = kernels.calls["depthwise_forward"], kernels.calls["depthwise_backward"]
        y = depthwise.depthwise_forward(xp, w, out_hw, stride, dilation)
        np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
        gx, gw = depthwise.depthwise_backward(g, xp, w, stride, dilation, True, True)
        np.testing.assert_allclose(gx, ref_gx, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gw, ref_gw, rtol=1e-4, atol=1e-4)
        assert (kernels.calls["depthwise_forward"], kernels.calls["depthwise_backward"]) == (before[0] + 1,
                                                                                            before[1] + 1)
        only_x = depthwise.depthwise_backward(g, xp, w, stride, dilation, True, False)
        only_w = depthwise.depthwise_backward(g, xp, w, stride, dilation, False, True)
        assert only_x[1] is None and only_w[0] is None
        np.testing.assert_allclose(only_x[0], ref_gx, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(only_w[1], ref_gw, rtol=1e-4, atol=1e-4)


def test_float64_and_half_precision_take_the_twin():
    before = dict(kernels.calls)
    for dtype in (np.float64, np.float16):
        xp, w = np.ones((1, 2, 4, 4), dtype), np.ones((2, 3, 3), dtype)
        y = depthwise.depthwise_forward(xp, w, (2, 2), (1, 1), (1, 1))
        assert y.dtype == dtype and np.all(y == 9)
        gx, gw = depthwise.depthwise_backward(y, xp, w, (1, 1), (1, 1), True, True)
        assert gx.dtype == gw.dtype == dtype
    assert dict(kernels.calls) == before


def test_both_implementations_are_documented():
    for fn in (depthwise.depthwise_forward, depthwise.depthwise_backward):
        assert callable(fn.kernel) and callable(fn.twin) and fn.__doc__
