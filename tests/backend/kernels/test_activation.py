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


# (kernel, scalar arguments after x, how many outputs). Exact GELU's kernels are compiled without
# fastmath's nsz (``_jit.FAST_SIGNED``): with it, on the AMD host, LLVM's machine combiner ordered their
# product chain one way in the vector loop and another in the scalar one, an ulp apart.
_PLACED = [
    (activation.gelu_forward, (), 1),
    (activation.gelu_forward_with_grad, (), 2),
    (activation.sigmoid_forward, (), 1),
    (activation.silu_forward, (f32(1.0),), 1),
    (activation.silu_forward_with_grad, (f32(1.0),), 2),
    (activation.silu_forward_with_grad, (f32(1.702),), 2),
    (activation.gelu_tanh_forward, (), 1),
    (activation.gelu_tanh_forward_with_grad, (), 2),
]


@pytest.mark.parametrize("kern, scalars, n_out", _PLACED, ids=lambda p: getattr(p, "__name__", None))
def test_an_activation_kernel_gives_the_same_bits_wherever_its_arrays_lie(kern, scalars, n_out):
    """LLVM vectorises these loops and keeps a scalar copy, which runs the tail and, when an output starts
    within a vector's length after an input (two small arrays malloc put side by side; an in-place call),
    the whole call. Both copies must round alike: with fastmath's reciprocal approximation the vector
    copy divided by an estimate on an AMD EPYC and the scalar one exactly, and EfficientNet's
    squeeze-excite activations (8 elements) differed by an ulp between an eager step and its replay."""
    for n in (5, 8, 15, 1000):
        x0 = (rng.standard_normal(n) * 3).astype(f32)
        far = np.empty((1 + n_out) * 4096, f32)  # x and the outputs 16 KB apart (the vector copy runs)
        x, *apart = (far[k * 4096: k * 4096 + n] for k in range(1 + n_out))
        x[:] = x0
        kern(x, *scalars, *apart)
        # x and the outputs side by side in one buffer (the scalar copy runs)
        buf = np.empty((1 + n_out) * n, f32)
        x, *beside = np.split(buf, 1 + n_out)
        x[:] = x0
        kern(x, *scalars, *beside)
        for a, b in zip(apart, beside):
            assert np.array_equal(a, b), (n, np.abs(a - b).max())
        if n_out == 1:  # in place: the output is the input
            x = x0.copy()
            kern(x, *scalars, x)
            assert np.array_equal(apart[0], x), (n, np.abs(apart[0] - x).max())
