"""The activation kernels against float64 math."""

import math

import numpy as np
import pytest

from neural_arch.backend.kernels import activation

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


def _erf64(x):
    return np.vectorize(math.erf)(x)


def test_gelu_exact_error_below_1e6_against_float64_math():
    x = np.linspace(-10, 10, 400_001).astype(f32)
    y = np.empty_like(x)
    activation.gelu_forward(x, y)
    x64 = x.astype(np.float64)
    ref = 0.5 * x64 * (1 + _erf64(x64 / math.sqrt(2)))
    err = np.abs(y - ref).max()
    print(f"\nfused exact GELU (float32): max |error| vs float64 math on [-10, 10] = {err:.3g}")
    assert err < 1e-6


def test_gelu_derivative_matches_float64():
    x = (rng.standard_normal(10_000) * 3).astype(f32)
    y, d, y_plain = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    activation.gelu_forward_with_grad(x, y, d)
    activation.gelu_forward(x, y_plain)
    np.testing.assert_allclose(y, y_plain, rtol=1e-6, atol=1e-12)  # the same y, to an ulp or two
    x64 = x.astype(np.float64)
    ref = 0.5 * (1 + _erf64(x64 / math.sqrt(2))) + x64 * np.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(d, ref, rtol=1e-5, atol=2e-6)


def test_gelu_tanh_and_silu():
    x = (rng.standard_normal(10_000) * 4).astype(f32)
    x64 = x.astype(np.float64)
    y, d, y2 = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    activation.gelu_tanh_forward(x, y)
    u = math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)
    np.testing.assert_allclose(y, 0.5 * x64 * (1 + np.tanh(u)), rtol=1e-5, atol=1e-6)
    activation.gelu_tanh_forward_with_grad(x, y2, d)
    np.testing.assert_allclose(y2, 0.5 * x64 * (1 + np.tanh(u)), rtol=1e-5, atol=1e-6)
    t = np.tanh(u)
    ref = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x64**2)
    np.testing.assert_allclose(d, ref, rtol=1e-4, atol=1e-5)
    for alpha in (1.0, 1.702):
        activation.silu_forward(x, f32(alpha), y)
        s = 1 / (1 + np.exp(-alpha * x64))
        np.testing.assert_allclose(y, x64 * s, rtol=1e-5, atol=1e-6)
        activation.silu_forward_with_grad(x, f32(alpha), y2, d)
        np.testing.assert_allclose(y2, x64 * s, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d, s + alpha * x64 * s * (1 - s), rtol=1e-4, atol=1e-5)


def test_relu_forward_keeps_nan_like_numpy_and_torch():
    x = np.array([-2.0, -0.0, 0.0, 1.5, np.nan, -np.inf, np.inf], f32)
    y = np.empty_like(x)
    activation.relu_forward(x, y)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
