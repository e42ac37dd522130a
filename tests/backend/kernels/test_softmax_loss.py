"""The softmax and cross-entropy kernels against float64 math."""

import numpy as np
import pytest

from neural_arch.backend.kernels import softmax_loss

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows_stable_at_1e4(log):
    x = (rng.standard_normal((16, 30)) * 1e4).astype(f32)
    g = rng.standard_normal((16, 30)).astype(f32)
    y, dx = np.empty_like(x), np.empty_like(x)
    softmax_loss.softmax_forward_kernel(x, y, log)
    x64 = x.astype(np.float64)
    lse = x64.max(1, keepdims=True) + np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1, keepdims=True))
    ref = x64 - lse if log else np.exp(x64 - lse)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    softmax_loss.softmax_backward_kernel(y, g, dx, log)
    p = np.exp(x64 - lse)
    ref_dx = g - p * g.sum(1, keepdims=True) if log else p * (g - (g * p).sum(1, keepdims=True))
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)


def test_cross_entropy_rows_with_smoothing_and_ignore():
    n, c = 50, 17
    x = (rng.standard_normal((n, c)) * 5).astype(f32)
    t = rng.integers(0, c, n)
    t[3] = -100
    t[7] = c  # out of range: counted as bad, loss 0, no gradient (the caller raises)
    loss, dx, stats = np.empty(n, f32), np.empty_like(x), np.zeros((4, 3))
    softmax_loss.cross_entropy_kernel(x, t, -100, f32(0.1), loss, dx, True, stats)
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1)) + x64.max(1)
    safe_t = np.where((t < 0) | (t >= c), 0, t)
    ref = lse - 0.9 * x64[np.arange(n), safe_t] - 0.1 * x64.mean(1)
    ref[[3, 7]] = 0
    np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-5)
    p = np.exp(x64 - lse[:, None]) - 0.1 / c
    p[np.arange(n), safe_t] -= 0.9
    p[[3, 7]] = 0
    np.testing.assert_allclose(dx, p, rtol=1e-4, atol=1e-6)
    total, counted, bad = stats.sum(axis=0)  # four chunks of rows, summed
    assert (counted, bad) == (n - 2, 1)
    np.testing.assert_allclose(total, ref.sum(), rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_losses_without_a_gradient_equal_those_with_one(smoothing):
    """The no-gradient pass (evaluation) sums the same stored exponentials as the training pass."""
    n, c = 64, 1000
    x = (rng.standard_normal((n, c)) * 3).astype(f32)
    t = rng.integers(0, c, n)
    with_grad, without = np.empty(n, f32), np.empty(n, f32)
    softmax_loss.cross_entropy_kernel(x, t, -100, f32(smoothing), with_grad, np.empty_like(x), True, np.zeros((2, 3)))
    softmax_loss.cross_entropy_kernel(x, t, -100, f32(smoothing), without, np.empty((1, 1), f32), False,
                                      np.zeros((2, 3)))
    np.testing.assert_array_equal(without, with_grad)


@pytest.mark.parametrize("masked", [-np.inf, np.finfo(f32).min, -1e4, -90.0])
def test_softmax_of_masked_scores_is_exactly_zero(masked):
    """A causal mask's scores: their probabilities are 0, as torch's, never the denormals (~1e-40) a
    clamped exp would leave, which slow every product that later reads them by ~50x on x86."""
    x = rng.standard_normal((64, 64)).astype(f32)
    x[np.triu_indices(64, 1)] = masked
    y = np.empty_like(x)
    softmax_loss.softmax_forward_kernel(x, y, False)
    assert (y[np.triu_indices(64, 1)] == 0).all()
    assert not ((y != 0) & (np.abs(y) < np.finfo(f32).tiny)).any()  # no denormals anywhere
    np.testing.assert_allclose(y.sum(1), 1, rtol=1e-6)
