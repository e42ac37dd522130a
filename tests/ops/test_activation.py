"""Activations and softmax: parity with torch (forward, backward, float64/float32), gradcheck,
numerical edge cases, fused == composition, the accuracy of our erf, and typed errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, IndexingError, ShapeError
from neural_arch.backend.kernels.activation import erf, erfc, ndtr


def _spread(*shape, seed=0):
    """Values over [-5, 5] without exact kinks (0, +-3, +-6), where subgradients are conventions."""
    x = randn(*shape, seed=seed) * 2.5
    return x + 0.01 * (np.abs(x) < 0.01)


OPS = {  # name: (ours, torch)
    "relu": (F.relu, TF.relu),
    "relu6": (F.relu6, TF.relu6),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "selu": (F.selu, TF.selu),
    "celu": (lambda x: F.celu(x, 1.5), lambda x: TF.celu(x, 1.5)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "quick_gelu": (F.quick_gelu, lambda x: x * torch.sigmoid(1.702 * x)),
    "silu": (F.silu, TF.silu),
    "mish": (F.mish, TF.mish),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: TF.softplus(x, beta=2.0, threshold=3.0)),
    "hardtanh": (lambda x: F.hardtanh(x, -2.0, 1.5), lambda x: TF.hardtanh(x, -2.0, 1.5)),
    "hardswish": (F.hardswish, TF.hardswish),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid),
    "glu": (F.glu, TF.glu),
    "glu_dim0": (lambda x: F.glu(x, 0), lambda x: TF.glu(x, 0)),
    "softmax": (lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1)),
    "softmax_dim0": (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
    "softmin": (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1)),
    "log_softmax": (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    "log_softmax_dim0": (lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0)),
}


# NOTE: torch's hardsigmoid backward multiplies by 1/6 rounded to float32 even for float64
# tensors (a 3e-8 relative error); ours uses the exact 1/6, so that op gets a looser rtol.
LOOSE = {"hardsigmoid": 1e-7}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 4)])
def test_parity(name, shape):
    ours, ref = OPS[name]
    check(ours, [_spread(*shape, seed=len(name))], torch_fn=ref, rtol=LOOSE.get(name))


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name):
    gradcheck(OPS[name][0], [_spread(2, 4, seed=3)])


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "softplus", "elu", "mish"])
def test_parity_0d_and_large_inputs(name):
    ours, ref = OPS[name]
    check(ours, [np.array(0.7)], torch_fn=ref)
    check(ours, [np.array([-40.0, -25.0, -10.0, 10.0, 25.0, 40.0])], torch_fn=ref)


def test_tensor_methods():
    check(lambda x: x.relu() + x.softmax(-1) * x.log_softmax(dim=0), [randn(3, 5)])


# -- numerics ------------------------------------------------------------------------------------------
def test_erf_accuracy_against_math_erf():
    z = np.linspace(-30, 30, 600_001)
    ref = np.array([math.erf(v) for v in z])
    ref_c = np.array([math.erfc(v) for v in z])
    err = np.abs(erf(z) - ref).max()
    err_c = np.max(np.abs(erfc(z) - ref_c) / np.maximum(ref_c, 1e-300) * (ref_c > 1e-300))
    print(f"\n[erf] max abs error of our float64 erf vs math.erf on [-30, 30]: {err:.3e}")
    print(f"[erf] max rel error of our float64 erfc vs math.erfc where erfc > 1e-300: {err_c:.3e}")
    assert err < 1e-15
    assert err_c < 1e-12
    assert erf(np.float32([0.5, -2.0])).dtype == np.float32


def test_exact_gelu_float32_error_vs_float64_math():
    x = np.linspace(-10, 10, 200_001).astype(np.float32)
    ref = np.array([float(v) * 0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    ours = F.gelu(na.tensor(x)).numpy()
    assert ours.dtype == np.float32
    err = np.abs(ours.astype(np.float64) - ref).max()
    err_torch = np.abs(TF.gelu(torch.tensor(x)).numpy().astype(np.float64) - ref).max()
    print(f"\n[gelu] float32 exact GELU max abs error vs float64 math on [-10, 10]: ours {err:.3e}, "
          f"torch {err_torch:.3e}")
    assert err < 1e-6
    # the left tail keeps relative accuracy (Phi computed from erfc, no cancellation)
    xt = np.array([-8.0, -6.0, -4.0])
    rel = np.abs(F.gelu(na.tensor(xt)).numpy() / (xt * 0.5 * np.array([math.erfc(-v / math.sqrt(2)) for v in xt])) - 1)
    assert rel.max() < 1e-13
    assert np.all(ndtr(np.array([-40.0, 40.0])) == np.array([0.0, 1.0]))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_large_logits_float32(op):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 2, -1e4, -1e4 + 1]], dtype=np.float32)
    check(lambda t: getattr(F, op)(t, -1), [x], torch_fn=lambda t: getattr(TF, op)(t, -1), dtypes=(np.float32,))
    out = getattr(F, op)(na.tensor(x), -1).numpy()
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_softmax_all_neg_inf_row_is_nan_like_torch():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, -np.inf]])
    for op in ("softmax", "log_softmax"):
        ours = getattr(F, op)(na.tensor(x), -1).numpy()
        ref = getattr(TF, op)(torch.tensor(x), -1).numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours[1], ref[1])


def test_float32_stays_float32():
    x = na.tensor(np.float32([[0.5, -1.0, 2.0]]), requires_grad=True)
    for name, (fn, _) in OPS.items():
        if name.startswith("glu"):
            continue
        y = fn(x)
        assert y.dtype == np.float32, name
        y.sum().backward()
        assert x.grad.dtype == np.float32, name
        x.grad = None


# -- fused == composition from primitives --------------------------------------------------------------------
def test_fused_log_softmax_equals_composition():
    x = randn(3, 7, seed=4) * 5
    check(lambda t: F.log_softmax(t, 1), [x], torch_fn=lambda t: t - t.logsumexp(1, keepdim=True), dtypes=(np.float64,))
    a = na.tensor(x, requires_grad=True)
    b = na.tensor(x, requires_grad=True)
    up = na.tensor(randn(3, 7, seed=5))
    F.log_softmax(a, 1).backward(up)
    (b - b.logsumexp(1, keepdim=True)).backward(up)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-13)


def _same_as_composition(fused, composed, x):
    a = na.tensor(x, requires_grad=True)
    b = na.tensor(x, requires_grad=True)
    up = na.tensor(randn(*x.shape, seed=9))
    ya, yb = fused(a), composed(b)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12, atol=1e-13)
    ya.backward(up)
    yb.backward(up)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_fused_softmax_equals_composition():
    _same_as_composition(lambda t: F.softmax(t, -1),
                         lambda t: (t - t.amax(-1, keepdim=True)).exp() / (t - t.amax(-1, keepdim=True)).exp().sum(
                             -1, keepdim=True), randn(4, 6, seed=2) * 3)


def test_fused_gelu_equals_composition():
    _same_as_composition(F.gelu, lambda t: t * _phi_composed(t), randn(5, 4, seed=3) * 2)
    c = math.sqrt(2 / math.pi)
    _same_as_composition(lambda t: F.gelu(t, approximate="tanh"),
                         lambda t: 0.5 * t * (1 + ((t + 0.044715 * t**3) * c).tanh()), randn(5, 4, seed=4) * 2)


def _phi_composed(t):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 as its own primitive (d/dx = e^{-x^2/2} / sqrt(2 pi)), so
    that x * Phi(x) goes through the engine's product rule instead of GELU's fused backward."""

    class Phi(na.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 0.5 * (1 + erf(x / math.sqrt(2)))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    return Phi.apply(t)


# -- errors ------------------------------------------------------------------------------------------------------
def test_errors():
    x = na.randn(3, 4)
    with pytest.raises(ConfigError, match="approximate"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ShapeError, match="even"):
        F.glu(na.randn(3, 5))
    with pytest.raises(IndexingError, match="dim 2"):
        F.softmax(x, 2)
    with pytest.raises(DTypeError, match="floating"):
        F.gelu(na.tensor(np.array([1, 2])))
    with pytest.raises(DTypeError, match="floating"):
        F.log_softmax(na.tensor(np.array([1, 2])), 0)
    with pytest.raises(ConfigError):
        F.hardtanh(x, 1.0, -1.0)
    # integer relu works as torch's does (no grad)
    np.testing.assert_array_equal(F.relu(na.tensor(np.array([-1, 2]))).numpy(), [0, 2])
    # softmax(dtype=) casts first
    assert F.softmax(na.tensor(np.array([1, 2])), 0, dtype=na.float64).dtype == np.float64


def test_implicit_softmax_dim_warns_and_matches_torch():
    x = randn(2, 3, 4)
    with pytest.warns(UserWarning):
        ours = F.softmax(na.tensor(x)).numpy()
    with pytest.warns(UserWarning):
        ref = TF.softmax(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, ref)
