"""Kernels that read and write bfloat16 themselves (issue 18, item 3): for a bfloat16 input each gives,
bit for bit, the float32 kernel's result on the widened input rounded as torch rounds to bfloat16, so
low-precision storage costs no conversion pass. Small calls (one thread) and large ones (the threads);
the NumPy twins (kernels off) widen, compute in float32 and round the same outputs."""

import numpy as np
import pytest

from neural_arch.backend import kernels
from neural_arch.backend.dtypes import bfloat16
from neural_arch.backend.kernels import activation, norm, softmax_loss
from neural_arch.backend.threads import policy

torch = pytest.importorskip("torch")

SHAPES = [(6, 40), (2 * policy.kernel_min_elements // 384 + 1, 384)]  # one thread; split over the threads


def _bf16(rng, shape, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(bfloat16)


def _torch_rounded(a32):
    """torch's float32 -> bfloat16 rounding of ``a32``, as bits"""
    return torch.from_numpy(np.ascontiguousarray(a32)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


_TAIL = 100 * np.finfo(np.float32).tiny  # |x| times a denormal sigmoid: below it, see test_gelu_reads_and_writes_bf16


def _assert_rounded_from(got, float32_result, denormal_tail=False):
    assert got.dtype == bfloat16
    want = _torch_rounded(float32_result)
    if denormal_tail:  # see test_gelu_reads_and_writes_bf16
        tail = np.abs(float32_result) < _TAIL
        np.testing.assert_allclose(got[tail].astype(np.float32), float32_result[tail], rtol=0, atol=1e-35)
        got, want = got[~tail], want[~tail]
    np.testing.assert_array_equal(got.view(np.uint16), want)


def _ran(name, call):
    before = kernels.calls[name]
    out = call()
    assert kernels.calls[name] == before + 1, f"{name}: the kernel did not take the bfloat16 arguments"
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tanh", [False, True])
@pytest.mark.parametrize("with_grad", [False, True])
def test_gelu_reads_and_writes_bf16(shape, tanh, with_grad, jit):
    x = _bf16(np.random.default_rng(0), shape, scale=4.0)
    x.reshape(-1)[:4] = np.array([-20.0, 20.0, -100.0, 0.0], np.float32).astype(bfloat16)  # the tails
    y, deriv = _ran("gelu", lambda: activation.gelu(x, tanh, with_grad))
    y32, deriv32 = activation.gelu(x.astype(np.float32), tanh, with_grad)
    # Far in the negative tail the tanh form's sigmoid is 1 / (1 + e^88) ~ 1e-39, a denormal that
    # fastmath's reciprocal gives as 0 in one compiled loop and as itself in another: there (|y| below
    # _TAIL: |x| (up to ~100 here) times the smallest normal float32) the two paths agree to 1e-35 (|x|
    # times the denormal), not bit for bit.
    _assert_rounded_from(y, y32, denormal_tail=tanh)
    if with_grad:  # what backward multiplies by stays float32: backward is the float32 one
        assert deriv.dtype == np.float32
        # (exact: with fastmath's nsz, exact GELU's loops were ordered differently, an ulp apart on an AMD EPYC)
        np.testing.assert_array_equal(deriv, deriv32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tanh", [False, True])
@pytest.mark.parametrize("grad_dtype", ["float32", "bfloat16"])
def test_gelu_backward_recomputes_from_bf16(shape, tanh, grad_dtype, jit):
    """GELU's backward on a bfloat16 input: dy/dx recomputed from x in the kernel, times g, rounded once.
    The float32 reference multiplies the forward kernel's saved dy/dx; LLVM may contract the product
    into the derivative's sum another way (fastmath), so a few results land one bfloat16 step apart."""
    rng = np.random.default_rng(5)
    x = _bf16(rng, shape, scale=4.0)
    x.reshape(-1)[:4] = np.array([-20.0, 20.0, -100.0, 0.0], np.float32).astype(bfloat16)
    g = _bf16(rng, shape) if grad_dtype == "bfloat16" else rng.standard_normal(shape).astype(np.float32)
    dx = _ran("gelu_backward", lambda: activation.gelu_backward(x, g, tanh))
    assert dx.dtype == bfloat16
    want32 = g.astype(np.float32) * activation.gelu(x.astype(np.float32), tanh, True)[1]
    tail = np.abs(want32) < np.finfo(np.float32).tiny  # denormals: see test_gelu_reads_and_writes_bf16
    np.testing.assert_allclose(dx[tail].astype(np.float32), want32[tail], rtol=0, atol=1e-30)  # x^3 * a denormal
    got, want = dx[~tail].view(np.uint16).astype(np.int32), _torch_rounded(want32[~tail]).astype(np.int32)
    assert np.abs(got - want).max() <= 1  # (same sign: a bfloat16 step is 1 in the bits)
    assert np.mean(got != want) < 1e-3
    with kernels.enabled(False):  # the twin: float32 NumPy on the widened arrays, rounded once (its tanh
        twin = activation.gelu_backward(x, g, tanh)  # form loses ~1e-5 to cancellation in the negative tail)
    np.testing.assert_allclose(twin.astype(np.float32), dx.astype(np.float32), rtol=2 ** -7, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params", ["float32", "bfloat16"])
def test_layer_norm_forward_and_backward_read_and_write_bf16(shape, params, jit):
    rng = np.random.default_rng(1)
    x, g = _bf16(rng, shape) + np.float32(2).astype(bfloat16), _bf16(rng, shape)
    w, b = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    if params == "bfloat16":
        w, b = w.astype(bfloat16), b.astype(bfloat16)
    wide = {id(a): a.astype(np.float32) for a in (x, g, w, b)}
    y, mean, rstd = _ran("layer_norm_forward", lambda: norm.layer_norm_forward(x, w, b, 1e-5))
    y32, mean32, rstd32 = norm.layer_norm_forward(wide[id(x)], wide[id(w)], wide[id(b)], 1e-5)
    _assert_rounded_from(y, y32)
    np.testing.assert_array_equal(mean, mean32)
    np.testing.assert_array_equal(rstd, rstd32)
    dx, dw, db = _ran("layer_norm_backward", lambda: norm.layer_norm_backward(g, x, w, mean, rstd))
    dx32, dw32, db32 = norm.layer_norm_backward(wide[id(g)], wide[id(x)], wide[id(w)], mean32, rstd32)
    _assert_rounded_from(dx, dx32)
    assert dw.dtype == db.dtype == np.float32  # summed over rows in float32; the op rounds them once
    np.testing.assert_array_equal(dw, dw32)
    np.testing.assert_array_equal(db, db32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("log", [False, True])
def test_softmax_forward_and_backward_read_and_write_bf16(shape, log, jit):
    rng = np.random.default_rng(2)
    x, g = _bf16(rng, shape, scale=5.0), _bf16(rng, shape)
    x[:, -3:] = -np.inf  # masked scores (a causal mask's)
    x[0, :] = 300.0  # a large row: the max must be subtracted before exp
    y = _ran("softmax", lambda: softmax_loss.softmax(x, (1,), log))
    y32 = softmax_loss.softmax(x.astype(np.float32), (1,), log)
    _assert_rounded_from(y, y32)
    dx = _ran("softmax_backward", lambda: softmax_loss.softmax_backward(y, g, (1,), log))
    dx32 = softmax_loss.softmax_backward(y.astype(np.float32), g.astype(np.float32), (1,), log)
    _assert_rounded_from(dx, dx32)


def test_the_twins_round_once_as_the_kernels_do():
    """Kernels off: the NumPy twins widen, compute in float32 and round the same outputs (the float32
    twins and kernels agree to float32 rounding, so the bfloat16 results to one bfloat16 step)."""
    rng = np.random.default_rng(3)
    x, g = _bf16(rng, (8, 64)), _bf16(rng, (8, 64))
    w, b = np.ones(64, np.float32), np.zeros(64, np.float32)
    with kernels.enabled(False):
        twin = {"gelu": activation.gelu(x, False, True), "ln": norm.layer_norm_forward(x, w, b, 1e-5),
                "softmax": softmax_loss.softmax(x, (1,), False),
                "softmax_backward": softmax_loss.softmax_backward(x, g, (1,), True)}
    assert twin["gelu"][0].dtype == twin["ln"][0].dtype == twin["softmax"].dtype == bfloat16
    assert twin["gelu"][1].dtype == twin["ln"][1].dtype == np.float32
    assert twin["softmax_backward"].dtype == bfloat16
    wide = x.astype(np.float32)
    for got, want in [(twin["gelu"][0], activation._gelu(wide, False, False)[0]),
                      (twin["ln"][0], norm._layer_norm_forward(wide, w, b, 1e-5)[0]),
                      (twin["softmax"], softmax_loss._softmax(wide, (1,), False))]:
        _assert_rounded_from(got, want)


def test_float16_goes_to_the_twin_in_float32():
    """float16 has no kernel path: the twin computes in float32 and rounds once, to float16."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 64)).astype(np.float16)
    y = softmax_loss.softmax(x, (1,), True)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, softmax_loss._softmax(x.astype(np.float32), (1,), True).astype(np.float16))
    y, deriv = activation.gelu(x, True, True)
    assert (y.dtype, deriv.dtype) == (np.float16, np.float32)


@pytest.mark.parametrize("shape", [(10, 65), (2 * policy.kernel_min_elements // 65 + 1, 65)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_reads_bf16_logits(shape, smoothing, jit):
    """The losses stay float32 (torch's cross_entropy returns float32 under CPU autocast); dloss/dlogits
    comes back in the logits' dtype, rounded once."""
    rng = np.random.default_rng(5)
    x = _bf16(rng, shape, scale=4.0)
    target = rng.integers(0, shape[1], shape[0])
    target[1] = -100  # ignored
    loss, dx, total, counted, bad = _ran("class_nll", lambda: softmax_loss.class_nll(
        x, target, None, -100, smoothing, True, True))
    loss32, dx32, total32, counted32, bad32 = softmax_loss.class_nll(
        x.astype(np.float32), target, None, -100, smoothing, True, True)
    assert loss.dtype == np.float32
    np.testing.assert_array_equal(loss, loss32)
    assert (total, counted, bad) == (total32, counted32, bad32) == (total, shape[0] - 1, 0)
    _assert_rounded_from(dx, dx32)
    no_grad = softmax_loss.class_nll(x, target, None, -100, smoothing, True, False)
    no_grad32 = softmax_loss.class_nll(x.astype(np.float32), target, None, -100, smoothing, True, False)
    np.testing.assert_array_equal(no_grad[0], no_grad32[0])
    assert no_grad[1] is None
