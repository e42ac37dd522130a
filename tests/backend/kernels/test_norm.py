"""The row-norm kernels against float64 math (the channel norm: tests/ops/test_implementations.py)."""

import numpy as np
import pytest

from neural_arch.backend.kernels import norm

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


def _layer_norm64(x, w, b, eps):
    mu = x.mean(1, keepdims=True)
    var = x.var(1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def test_layer_norm_forward_backward():
    x = (rng.standard_normal((64, 48)) * 3 + 1).astype(f32)
    w, b = rng.standard_normal(48).astype(f32), rng.standard_normal(48).astype(f32)
    g = rng.standard_normal((64, 48)).astype(f32)
    y, mean, rstd = np.empty_like(x), np.empty(64, f32), np.empty(64, f32)
    norm.layer_norm_forward_kernel(x, w, b, f32(1e-5), y, mean, rstd)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, _layer_norm64(x64, w, b, 1e-5), rtol=1e-4, atol=1e-5)
    dx, dw, db = np.empty_like(x), np.zeros((3, 48), f32), np.zeros((3, 48), f32)
    norm.layer_norm_backward_kernel(g, x, w, mean, rstd, dx, dw, db)
    # reference gradient by the closed form in float64
    mu, rs = x64.mean(1, keepdims=True), 1 / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    xh = (x64 - mu) * rs
    gw = g * w
    ref_dx = rs * (gw - gw.mean(1, keepdims=True) - xh * (gw * xh).mean(1, keepdims=True))
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(dw.sum(0), (g * xh).sum(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db.sum(0), g.sum(0), rtol=1e-4, atol=1e-4)


def test_rms_norm_forward_backward():
    x = rng.standard_normal((32, 40)).astype(f32)
    w = rng.standard_normal(40).astype(f32)
    g = rng.standard_normal((32, 40)).astype(f32)
    y, rstd = np.empty_like(x), np.empty(32, f32)
    norm.rms_norm_forward_kernel(x, w, f32(1e-6), y, rstd)
    x64 = x.astype(np.float64)
    rs = 1 / np.sqrt((x64**2).mean(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, x64 * rs * w, rtol=1e-5, atol=1e-6)
    dx, dw = np.empty_like(x), np.zeros((2, 40), f32)
    norm.rms_norm_backward_kernel(g, x, w, rstd, dx, dw)
    xh = x64 * rs
    ref = rs * (g * w - xh * (g * w * xh).mean(1, keepdims=True))
    np.testing.assert_allclose(dx, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw.sum(0), (g * xh).sum(0), rtol=1e-4, atol=1e-4)
