"""bfloat16 and float16 through every op, forward and backward, against torch in the same dtype.

The table reuses the op tables of the float32/float64 parity files (activations, elementwise, reductions,
shapes, indexing, regression losses) and adds one or more calls for each functional op; a coverage test
checks that every ``Function`` in ``neural_arch.ops`` is reached by the table, so a new op cannot be
missed silently.

Tolerances are torch.testing's defaults per dtype (bf16 rtol 1.6e-2 atol 1e-5, fp16 rtol 1e-3 atol 1e-5;
gradients atol x10, as the shared helper). Each value must be within them of torch's result in the same
dtype, *or* of the exact result (torch in float64 on the same half-rounded inputs and upstream gradient):
our ops compute in float32 and round once (``ops/_half.py``), where some of torch's formulas (rsqrt's
backward, a composition such as ``x * sigmoid(1.702 x)``) round after each step, so the two half results
can be a unit in the last place apart with ours the closer one. A value no further from the exact one
than torch's also passes: a sum with cancellation (the gradient of a broadcast divisor) loses digits in
both frameworks, by more than the tolerance. Outputs and gradients must come back in
the input's dtype (no leak to float32). Loosened per op only where torch's own OpInfo does: see LOOSE.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_cumulative
import test_pointwise
import test_products
import test_scatter
import torch
import torch.nn.functional as TF
from test_activation import OPS as ACTIVATIONS
from test_activation import _spread
from test_elementwise import BINARY, UNARY
from test_index import GATHERLIKE, GETITEM
from test_loss import REGRESSION
from test_reduce import REDUCE
from test_scan import conv_inputs, scan_inputs, torch_conv, torch_scan
from test_shape import SHAPE

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.autograd import function as function_module
from neural_arch.autograd.function import Function
from neural_arch.errors import DTypeError
from neural_arch.ops.moe import permute_rows
from neural_arch.ops.recurrent import gru_layer, lstm_layer, rnn_layer
from neural_arch.ops.recurrent_wave import lstm_pair
from neural_arch.ops.sampling import standard_gamma
from neural_arch.ops.scan import causal_depthwise_conv1d, selective_scan
from parity import BF16, F16, TOL, rand_pos, randn, torch_numpy, torch_tensor

DTYPES = [pytest.param(BF16, id="bf16"), pytest.param(F16, id="fp16")]


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else na


def _inputs(inputs, dtype, grad):
    ours, half, exact = [], [], []
    for a in inputs:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            h = a.astype(dtype)
            ours.append(na.Tensor(h, requires_grad=grad))
            half.append(torch_tensor(h, requires_grad=grad))
            exact.append(torch.tensor(h.astype(np.float64), requires_grad=grad))
        elif isinstance(a, np.ndarray):
            ours.append(na.Tensor(a))
            half.append(torch.from_numpy(a.copy()))
            exact.append(torch.from_numpy(a.copy()))
        else:
            ours.append(a), half.append(a), exact.append(a)
    return ours, half, exact


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _close(ours, half, exact, rtol, atol, what):
    """Each element within tolerance of torch's half result or of the exact result, or no further from
    the exact result than torch's (a gradient summed over broadcast positions loses digits to cancellation
    in both frameworks)."""
    ours, half, exact = (np.asarray(a, dtype=np.float64) for a in (ours, half, exact))
    assert ours.shape == half.shape, f"{what}: shape {ours.shape} != torch {half.shape}"

    def near(ref):
        with np.errstate(invalid="ignore"):
            ok = np.abs(ours - ref) <= atol + rtol * np.abs(ref)
        return ok | (np.isnan(ours) & np.isnan(ref)) | (ours == ref)

    with np.errstate(invalid="ignore"):
        no_worse = np.abs(ours - exact) <= np.abs(half - exact)  # an error torch makes too (or a larger one)
    bad = ~(near(half) | near(exact) | no_worse)
    if bad.any():
        i = np.argwhere(bad)[0] if ours.ndim else ()
        i = tuple(i)
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements off; e.g. at {i}: ours {ours[i]}, "
                             f"torch {half[i]}, exact {exact[i]} (rtol {rtol}, atol {atol})")


def check_half(fn, inputs, dtype, torch_fn=None, grad=True, rtol=None, atol=None, seed=0):
    torch_fn = torch_fn or fn
    r, a = TOL[dtype]
    r, a = max(r, rtol or 0), max(a, atol or 0)
    ours_in, half_in, exact_in = _inputs(inputs, dtype, grad)
    ours, exact = _as_list(fn(*ours_in)), _as_list(torch_fn(*exact_in))
    try:
        half = _as_list(torch_fn(*half_in))
    except (RuntimeError, NotImplementedError):  # an op torch has no half kernel for on the CPU
        half, half_in = exact, exact_in
    assert len(ours) == len(exact)
    for k, (o, h, e) in enumerate(zip(ours, half, exact)):
        if e.dtype.is_floating_point:
            assert o.dtype == dtype, f"output {k} is {o.dtype}, expected {dtype}"
        _close(o.detach().numpy(), torch_numpy(h), torch_numpy(e), r, a, f"forward output {k}")
    if not grad:
        return
    rng = np.random.default_rng(seed)
    terms = [(o, h, e, rng.standard_normal(e.shape).astype(dtype)) for o, h, e in zip(ours, half, exact)
             if e.requires_grad]
    if not terms:
        return
    torch.autograd.backward([e for _, _, e, _ in terms], [torch.tensor(u.astype(np.float64)) for *_, u in terms])
    if half is not exact:
        torch.autograd.backward([h for _, h, _, _ in terms], [torch_tensor(u) for *_, u in terms])
    # one backward pass, as torch's: two passes would round each pass's partial gradient before adding them
    outs, ups = [o for o, *_ in terms], [u for *_, u in terms]
    if len(terms) == 1:
        outs[0].backward(na.Tensor(ups[0]))
    else:
        na.cat([o.reshape(-1) for o in outs]).backward(na.Tensor(np.concatenate([u.reshape(-1) for u in ups])))
    for k, (x, h, e) in enumerate(zip(ours_in, half_in, exact_in)):
        if not (isinstance(e, torch.Tensor) and e.requires_grad) or e.grad is None:
            continue
        assert x.grad is not None, f"input {k}: no gradient (torch has one)"
        assert x.grad.dtype == x.dtype, f"grad of input {k} is {x.grad.dtype}, expected {x.dtype}"
        hg = h.grad if h.grad is not None else e.grad
        _close(x.grad.numpy(), torch_numpy(hg), torch_numpy(e.grad), r, a * 10, f"grad of input {k}")


# -- the table: name -> (ours, torch or None for the same code, inputs) ------------------------------------
CASES: dict = {}
for name, (ours, ref) in ACTIVATIONS.items():
    CASES[f"act_{name}"] = (ours, ref, lambda n=name: [_spread(4, 6, seed=len(n))])
for name, fn in BINARY.items():
    CASES[f"binary_{name}"] = (fn, None, lambda: [randn(2, 3, 4, seed=1), rand_pos(4, seed=2)])
for name, (fn, make) in UNARY.items():
    CASES[f"unary_{name}"] = (fn, None, lambda make=make: [make(3, 4, seed=7)])
for name, (fn, make) in REDUCE.items():
    CASES[f"reduce_{name}"] = (fn, None, lambda make=make: [make(2, 3, 4, seed=1)])
for name, (fn, shape) in SHAPE.items():
    CASES[f"shape_{name}"] = (fn, None, lambda shape=shape: [randn(*shape, seed=1)])
for name, make in GETITEM.items():
    if name == "neg_step_slice":  # torch has no negative steps (test_index compares with flip; so does "shape_flip")
        continue
    CASES[f"getitem_{name}"] = (lambda t, make=make: t[make(_lib(t))], None, lambda: [randn(3, 4, seed=1)])
for name, (fn, shape) in GATHERLIKE.items():
    CASES[f"gather_{name}"] = (lambda x, fn=fn: fn(_lib(x), x), None, lambda shape=shape: [randn(*shape, seed=3)])
for name, (ours, ref, kw) in REGRESSION.items():
    CASES[f"loss_{name}"] = (lambda a, b, o=ours, kw=kw: o(a, b, **kw), lambda a, b, r=ref, kw=kw: r(a, b, **kw),
                             lambda: [randn(3, 5, seed=1), randn(3, 5, seed=2)])


def case(name, ours, ref, make):
    CASES[name] = (ours, ref, make)


T3 = np.array([1, 0, 3])
case("where", lambda x, y: _lib(x).where(_lib(x).tensor(np.array([True, False, True, True])), x, y), None,
     lambda: [randn(3, 4, seed=1), randn(3, 4, seed=2)])
case("cat", lambda x, y: _lib(x).cat([x, y], 1), None, lambda: [randn(2, 3, seed=1), randn(2, 2, seed=2)])
case("stack", lambda x, y: _lib(x).stack([x, y], 0), None, lambda: [randn(2, 3, seed=1), randn(2, 3, seed=2)])
case("pad", lambda x: F.pad(x, (1, 2)), lambda x: TF.pad(x, (1, 2)), lambda: [randn(2, 3, seed=1)])
case("scatter_add", lambda x, s: x.scatter_add(0, _lib(x).tensor(np.array([[2, 0, 2, 1]])), s), None,
     lambda: [randn(3, 4, seed=1), randn(1, 4, seed=2)])
case("matmul", lambda x, y: x @ y, None, lambda: [randn(2, 3, 8, seed=1), randn(8, 5, seed=2)])
case("matmul_vec", lambda x, y: x @ y, None, lambda: [randn(8, seed=1), randn(8, 5, seed=2)])
case("bmm", lambda x, y: x.bmm(y), None, lambda: [randn(2, 3, 8, seed=1), randn(2, 8, 4, seed=2)])
case("einsum", lambda x, y: _lib(x).einsum("bij,bjk->bik", x, y), None,
     lambda: [randn(2, 3, 8, seed=1), randn(2, 8, 4, seed=2)])
case("linear", F.linear, TF.linear, lambda: [randn(2, 3, 16, seed=1), randn(5, 16, seed=2), randn(5, seed=3)])
case("layer_norm", lambda x, w, b: F.layer_norm(x, (6,), w, b), lambda x, w, b: TF.layer_norm(x, (6,), w, b),
     lambda: [randn(3, 4, 6, seed=1) * 3 + 1, rand_pos(6, seed=2), randn(6, seed=3)])
case("rms_norm", lambda x, w: F.rms_norm(x, (6,), w, eps=1e-6), lambda x, w: TF.rms_norm(x, (6,), w, eps=1e-6),
     lambda: [randn(3, 4, 6, seed=1), rand_pos(6, seed=2)])
case("batch_norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
     lambda: [randn(4, 3, 5, 5, seed=1), rand_pos(3, seed=2), randn(3, seed=3)])
case("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: TF.group_norm(x, 2, w, b),
     lambda: [randn(2, 4, 3, 3, seed=1), rand_pos(4, seed=2), randn(4, seed=3)])
case("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: TF.conv2d(x, w, b, padding=1),
     lambda: [randn(2, 3, 6, 6, seed=1), randn(4, 3, 3, 3, seed=2), randn(4, seed=3)])
case("conv2d_depthwise", lambda x, w: F.conv2d(x, w, groups=3, padding=1),
     lambda x, w: TF.conv2d(x, w, groups=3, padding=1), lambda: [randn(2, 3, 6, 6, seed=1), randn(3, 1, 3, 3, seed=2)])
case("conv1d", lambda x, w: F.conv1d(x, w, padding=1), lambda x, w: TF.conv1d(x, w, padding=1),
     lambda: [randn(2, 3, 7, seed=1), randn(4, 3, 3, seed=2)])
case("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, stride=2),
     lambda x, w: TF.conv_transpose2d(x, w, stride=2),
     lambda: [randn(2, 3, 4, 4, seed=1), randn(3, 2, 3, 3, seed=2)])
case("unfold", lambda x: F.unfold(x, 2), lambda x: TF.unfold(x, 2), lambda: [randn(2, 3, 4, 4, seed=1)])
case("fold", lambda x: F.fold(x, (3, 3), 2), lambda x: TF.fold(x, (3, 3), 2), lambda: [randn(2, 12, 4, seed=1)])
case("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), lambda: [randn(2, 3, 6, 6, seed=1)])
case("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), lambda: [randn(2, 3, 6, 6, seed=1)])
case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), lambda x: TF.adaptive_avg_pool2d(x, (2, 3)),
     lambda: [randn(2, 3, 5, 7, seed=1)])
case("interpolate_nearest", lambda x: F.interpolate(x, scale_factor=2), lambda x: TF.interpolate(x, scale_factor=2),
     lambda: [randn(1, 2, 3, 4, seed=1)])
case("interpolate_bilinear", lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"),
     lambda x: TF.interpolate(x, size=(5, 7), mode="bilinear"), lambda: [randn(1, 2, 3, 4, seed=1)])
case("sdpa_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True),
     lambda: [randn(2, 2, 5, 8, seed=1), randn(2, 2, 5, 8, seed=2), randn(2, 2, 5, 8, seed=3)])
case("embedding", lambda w: F.embedding(na.tensor(np.array([[1, 3, 1], [0, 2, 1]])), w),
     lambda w: TF.embedding(torch.tensor([[1, 3, 1], [0, 2, 1]]), w), lambda: [randn(5, 4, seed=1)])
case("cross_entropy", lambda x: F.cross_entropy(x, na.tensor(T3), label_smoothing=0.1),
     lambda x: TF.cross_entropy(x, torch.tensor(T3), label_smoothing=0.1), lambda: [randn(3, 5, seed=1) * 2])
case("cross_entropy_probs", lambda x, q: F.cross_entropy(x, q), lambda x, q: TF.cross_entropy(x, q),
     lambda: [randn(3, 5, seed=1), rand_pos(3, 5, seed=2) / 6])
case("nll_loss", lambda x: F.nll_loss(x, na.tensor(T3)), lambda x: TF.nll_loss(x, torch.tensor(T3)),
     lambda: [randn(3, 5, seed=1)])
case("binary_cross_entropy", lambda x, y: F.binary_cross_entropy(x, y), lambda x, y: TF.binary_cross_entropy(x, y),
     lambda: [rand_pos(3, 4, seed=1, low=0.05, high=0.95), rand_pos(3, 4, seed=2, low=0.0, high=1.0)])
case("bce_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y),
     lambda x, y: TF.binary_cross_entropy_with_logits(x, y),
     lambda: [randn(3, 4, seed=1), rand_pos(3, 4, seed=2, low=0.0, high=1.0)])
case("kl_div", lambda x, y: F.kl_div(x, y, reduction="batchmean"), lambda x, y: TF.kl_div(x, y, reduction="batchmean"),
     lambda: [-rand_pos(3, 4, seed=1), rand_pos(3, 4, seed=2, low=0.1, high=1.0)])

case("cosine_similarity", lambda x, y: F.cosine_similarity(x, y), lambda x, y: TF.cosine_similarity(x, y),
     lambda: [randn(3, 5, seed=1), randn(3, 5, seed=2)])
for rounding in ("floor", "ceil", "round", "trunc", "sign"):
    case(f"zero_grad_{rounding}", lambda x, r=rounding: getattr(x, r)() * x, None, lambda: [randn(3, 4, seed=1) * 3])
case("permute_rows", lambda x: permute_rows(x, np.array([3, 0, 4, 1, 2])) if isinstance(x, na.Tensor)
     else x[np.array([3, 0, 4, 1, 2])], None, lambda: [randn(5, 3, seed=1)])
case("selective_scan", selective_scan, torch_scan, lambda: scan_inputs())
case("causal_depthwise_conv1d", causal_depthwise_conv1d, torch_conv, lambda: conv_inputs())
case("igamma", lambda a, x: _lib(x).igamma(a.detach(), x) + _lib(x).igammac(a.detach(), x * 2), None,
     lambda: [rand_pos(3, 4, seed=1, low=0.5, high=3.0), rand_pos(3, 4, seed=2, low=0.1, high=3.0)])
case("grouped_mm", lambda a, b: F.grouped_mm(a, b, offs=np.array([2, 6], dtype=np.int32)),
     lambda a, b: torch.cat([a[:2] @ b[0], a[2:] @ b[1]]),  # its composition (torch's kernel has no float64)
     lambda: [randn(6, 8, seed=1), randn(2, 8, 4, seed=2)])

# -- the ops of the tensor-ops and rnn-nn merges ----------------------------------------------------------------
# float_power computes and returns float64 for any input (as torch); torch has no derivative for floor_divide
# nor for scatter's legacy reduce=; remainder is a composite of three ops (x - floor(x / y) y), each rounding
# in half where torch rounds once: NOTES.md
NOT_IN_HALF = {"float_power", "floor_divide", "remainder", "scatter_method_add"}
for name, x in test_pointwise.UNARY:
    case(f"pointwise_{name}", lambda x, n=name: getattr(_lib(x), n)(x), None, lambda x=x: [x])
for name, a, b in test_pointwise.BINARY:
    if name in NOT_IN_HALF:
        continue
    case(f"pointwise_{name}", lambda x, y, n=name: getattr(_lib(x), n)(x, y), None, lambda a=a, b=b: [a, b])
case("angle", lambda x: _lib(x).angle(x), None, lambda: [randn(3, 4, seed=1)])
for name, fn, x in test_cumulative.CASES:
    case(f"cumulative_{name}", lambda x, fn=fn: fn(_lib(x), x), None, lambda x=x: [x])
for name, fn, ins in test_scatter.CASES + test_scatter.PUT_CASES:
    if name in NOT_IN_HALF:
        continue
    case(f"scatter_{name}", lambda *xs, fn=fn: fn(_lib(xs[0]), *xs), None, lambda ins=ins: list(ins))
for name, fn, ins in test_products.CASES:
    if name.startswith(("diag", "trace")):
        case(f"products_{name}", lambda *xs, fn=fn: fn(_lib(xs[0]), *xs), None, lambda ins=ins: list(ins))
for reduce in ("sum", "prod", "mean", "amax", "amin"):
    for include_self in (True, False):
        case(f"scatter_reduce_{reduce}_{include_self}",
             lambda x, s, r=reduce, i=include_self: x.scatter_reduce(
                 0, test_scatter.torch_or_na(_lib(x), test_scatter.IDX_DUP), s, r, include_self=i),
             None, lambda: [test_scatter.X, test_scatter.SRC])
case("grid_sample", lambda x, g: F.grid_sample(x, g, align_corners=False),
     lambda x, g: TF.grid_sample(x, g, align_corners=False),
     lambda: [randn(2, 3, 4, 6, seed=7), randn(2, 3, 5, 2, seed=18) * 0.7])
case("max_unpool2d", lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2),
     lambda x: TF.max_unpool2d(*TF.max_pool2d(x, 2, return_indices=True), 2), lambda: [randn(2, 3, 6, 4, seed=1)])


def _torch_rnn(x, h, w_ih, w_hh, b_ih, b_hh):
    ys = []
    for t in range(x.shape[0]):
        h = torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        ys.append(h)
    return torch.stack(ys), h


def _torch_gru(x, h, w_ih, w_hh, b_ih, b_hh):
    ys = []
    for t in range(x.shape[0]):
        (ir, iz, i_n), (hr, hz, hn) = (x[t] @ w_ih.T + b_ih).chunk(3, 1), (h @ w_hh.T + b_hh).chunk(3, 1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        h = (1 - z) * torch.tanh(i_n + r * hn) + z * h
        ys.append(h)
    return torch.stack(ys), h


def _torch_lstm(x, h, c, w_ih, w_hh, b_ih, b_hh):
    ys = []
    for t in range(x.shape[0]):
        i, f, g, o = (x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys), h, c


def _rnn_inputs(gates, cell=False):
    T, B, n_in, H = 4, 2, 3, 5
    state = [randn(B, H, seed=2)] + ([randn(B, H, seed=3)] if cell else [])
    return [randn(T, B, n_in, seed=1), *state, randn(gates * H, n_in, seed=4) * 0.5,
            randn(gates * H, H, seed=5) * 0.5, randn(gates * H, seed=6), randn(gates * H, seed=7)]


case("rnn_layer", rnn_layer, _torch_rnn, lambda: _rnn_inputs(1))
case("gru_layer", gru_layer, _torch_gru, lambda: _rnn_inputs(3))
case("lstm_layer", lstm_layer, _torch_lstm, lambda: _rnn_inputs(4, cell=True))


def _lstm_pair(x, h1, c1, h2, c2, *w):
    y, first, second = lstm_pair(x, (h1, c1), (h2, c2), w[:4], w[4:])
    return [y, *first, *second]


def _torch_lstm_pair(x, h1, c1, h2, c2, *w):
    y1, h1n, c1n = _torch_lstm(x, h1, c1, *w[:4])
    y2, h2n, c2n = _torch_lstm(y1, h2, c2, *w[4:])
    return [y2, h1n, c1n, h2n, c2n]


def _lstm_pair_inputs():
    x, h1, c1, *w1 = _rnn_inputs(4, cell=True)
    H = h1.shape[1]
    w2 = [randn(4 * H, H, seed=8) * 0.5, randn(4 * H, H, seed=9) * 0.5, randn(4 * H, seed=10), randn(4 * H, seed=11)]
    return [x, h1, c1, randn(*h1.shape, seed=12), randn(*c1.shape, seed=13), *w1, *w2]


case("lstm_pair", _lstm_pair, _torch_lstm_pair, _lstm_pair_inputs)

# NOTE: per-op loosening, each as torch's OpInfo does for the same dtype
LOOSE: dict = {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_half_parity(name, dtype):
    ours, ref, make = CASES[name]
    rtol, atol = LOOSE.get(name, (None, None))
    check_half(ours, make(), dtype, torch_fn=ref, rtol=rtol, atol=atol)


def _op_classes() -> set:
    import importlib
    import pkgutil

    import neural_arch.ops as ops_package

    found = set()
    for info in pkgutil.iter_modules(ops_package.__path__):
        module = importlib.import_module(f"neural_arch.ops.{info.name}")
        found |= {v for v in vars(module).values()
                  if isinstance(v, type) and issubclass(v, Function) and v.__module__ == module.__name__}
    return found


def test_the_table_reaches_every_op():
    """Every Function in neural_arch.ops runs in some case of the table (in bfloat16), but those that refuse half
    inputs (``half = "unsupported"``: see the tests below)."""
    seen = set()
    was = function_module._tracer
    function_module._tracer = lambda cls, inputs, params, out: seen.add(cls)
    try:
        for ours, _, make in CASES.values():
            inputs, _, _ = _inputs(make(), BF16, True)
            out = ours(*inputs)
            out = (out[0] if isinstance(out, (tuple, list)) else out).sum()
            if out.requires_grad:  # (floor_divide has no gradient)
                out.backward()
        x = na.tensor(randn(2, 3, 4, 4, seed=1).astype(BF16), requires_grad=True)
        F.dropout2d(x, 0.5).sum().backward()
        F.dropout(x, 0.5).sum().backward()
    finally:
        function_module._tracer = was
    missing = {c.__name__ for c in _op_classes() - seen if c.half != "unsupported"}
    assert not missing, f"ops no half-precision case reaches: {sorted(missing)}"


def test_every_op_says_how_it_meets_half_inputs():
    """``half`` is one of the three values ``Function.apply`` knows (``ops/_half.py``): a typo would silently
    take the float32 path."""
    odd = {c.__name__: c.half for c in _op_classes() if c.half not in (None, "float32", "unsupported")}
    assert not odd, odd


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_op_without_half_support_refuses_half_inputs_with_a_typed_error(dtype):
    """Every ``half = "unsupported"`` op, called with a half array, raises a DTypeError naming the op and the
    dtype and saying to cast to float32 (before its forward runs, so any one array will do)."""
    refusing = sorted((c for c in _op_classes() if c.half == "unsupported"), key=lambda c: c.__name__)
    assert refusing
    for cls in refusing:
        with pytest.raises(DTypeError, match=rf"{cls.__name__}: no {dtype.name} .*float32"):
            cls.apply(na.tensor(randn(3, 3, seed=1).astype(dtype), requires_grad=True))


A33 = randn(3, 3, seed=1) + 3 * np.eye(3)
# name -> (ours, torch, inputs): calls torch 2.13 refuses in half precision on the CPU (no kernel, or no
# half complex dtype); ours must refuse too, with a typed error that names the dtype
REFUSED = {
    "det": (na.linalg.det, torch.linalg.det, [A33]),
    "slogdet": (na.linalg.slogdet, torch.linalg.slogdet, [A33]),
    "inv": (na.linalg.inv, torch.linalg.inv, [A33]),
    "solve": (na.linalg.solve, torch.linalg.solve, [A33, randn(3, 2, seed=2)]),
    "cholesky": (na.linalg.cholesky, torch.linalg.cholesky, [A33 @ A33.T]),
    "qr": (na.linalg.qr, torch.linalg.qr, [randn(4, 3, seed=1)]),
    "svd": (na.linalg.svd, torch.linalg.svd, [randn(4, 3, seed=1)]),
    "eigh": (na.linalg.eigh, torch.linalg.eigh, [A33 + A33.T]),
    "fft": (na.fft.fft, torch.fft.fft, [randn(8, seed=1)]),
    "rfft": (na.fft.rfft, torch.fft.rfft, [randn(8, seed=1)]),
    "irfft": (na.fft.irfft, torch.fft.irfft, [randn(8, seed=1)]),
    "complex": (na.complex, torch.complex, [randn(3, seed=1), randn(3, seed=2)]),
    "polar": (na.polar, torch.polar, [rand_pos(3, seed=1), randn(3, seed=2)]),
    "imag": (na.imag, torch.imag, [randn(3, seed=1)]),
    "view_as_real": (na.view_as_real, torch.view_as_real, [randn(3, seed=1)]),
    "standard_gamma": (standard_gamma, torch._standard_gamma, [rand_pos(3, seed=1)]),
    "ctc_loss": (lambda x: F.ctc_loss(x, na.tensor(np.array([[1, 2], [1, 1]])), na.tensor(np.array([5, 5])),
                                      na.tensor(np.array([2, 2]))),
                 lambda x: TF.ctc_loss(x, torch.tensor([[1, 2], [1, 1]]), torch.tensor([5, 5]), torch.tensor([2, 2])),
                 [-rand_pos(5, 2, 4, seed=1)]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_ours_refuses_half_where_torch_does(name, dtype):
    ours, theirs, inputs = REFUSED[name]
    if not (dtype == F16 and name == "complex"):  # (torch makes complex32, a dtype NumPy lacks: ours refuses)
        with pytest.raises((RuntimeError, NotImplementedError)):
            theirs(*[torch_tensor(a.astype(dtype)) for a in inputs])
    with pytest.raises(DTypeError, match=dtype.name):
        ours(*[na.tensor(a.astype(dtype)) for a in inputs])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["dropout", "dropout2d"])
def test_dropout_keeps_the_dtype_and_draws_the_float32_mask(op, dtype):
    """Dropout cannot be compared with torch's draws: it keeps the input's dtype, and drops the same
    elements as the float32 run from the same seed (the mask does not depend on the dtype)."""
    x = randn(2, 3, 4, 4, seed=1)
    outs = []
    for dt in (np.float32, dtype):
        na.manual_seed(5)
        t = na.tensor(x.astype(dt), requires_grad=True)
        y = getattr(F, op)(t, 0.4)
        y.backward(na.ones_like(y))
        assert y.dtype == dt and t.grad.dtype == dt
        outs.append((y.detach().numpy().astype(np.float32), t.grad.numpy().astype(np.float32)))
    (y32, g32), (yh, gh) = outs
    np.testing.assert_array_equal(y32 == 0, yh == 0)
    np.testing.assert_allclose(yh, y32, rtol=TOL[dtype][0], atol=TOL[dtype][1])
    np.testing.assert_allclose(gh, g32, rtol=TOL[dtype][0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["AdamW", "Adam", "SGD", "RMSprop", "Adagrad"])
def test_optimizer_steps_on_half_parameters_follow_torch(name, dtype):
    """Half parameters stay half through the update (the state too, as torch keeps it in the parameter's
    dtype); after three steps every weight is within two units in the last place of the largest weight of
    torch's (each step rounds the parameter and its state to the half dtype, in torch after each of its
    foreach ops, here after each formula: near-zero weights differ by more than their own unit)."""
    kw = {"lr": 1e-2, **({"momentum": 0.9} if name == "SGD" else {})}
    rng = np.random.default_rng(0)
    w0, x = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    ours, theirs = na.tensor(w0.copy(), requires_grad=True), torch_tensor(w0.copy(), requires_grad=True)
    opt, topt = getattr(na.optim, name)([ours], **kw), getattr(torch.optim, name)([theirs], **kw)
    for _ in range(3):
        opt.zero_grad(), topt.zero_grad()
        ((na.tensor(x) @ ours.T) ** 2).sum().backward()
        ((torch_tensor(x) @ theirs.T) ** 2).sum().backward()
        opt.step(), topt.step()
    assert ours.dtype == dtype
    got, want = ours.detach().numpy().astype(np.float64), torch_numpy(theirs).astype(np.float64)
    top = np.abs(want).max()
    ulp = float(np.spacing(np.float16(top))) if dtype == F16 else float(np.spacing(np.float32(top))) * 2 ** 16
    assert np.abs(got - want).max() <= 2 * ulp, (np.abs(got - want).max(), ulp)  # units of the largest weight


# -- what half ops keep for backward (issue 18: a bf16 step's memory) ------------------------------------
def _saved_bytes(t):
    """The bytes of the buffers behind what ``t``'s node keeps for backward (views counted by their base,
    once); read-only arrays are left out: cached constants shared by every call (the causal mask)."""
    buffers = {}
    for a in t._ctx._saved:
        if isinstance(a, np.ndarray) and a.flags.writeable:
            owner = a if a.base is None else a.base
            buffers[id(owner)] = owner.nbytes
    return sum(buffers.values())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask", ["causal", "padding"])
def test_attention_on_half_inputs_recomputes_p_exactly(dtype, mask):
    """Half q, k, v (permuted views of one projection, as in a transformer) keep only themselves for
    backward: not float32 copies and not P (B x H x L x L, larger than q, k, v together once L > 1.5 x the
    head size); backward recomputes P, so the gradients are, bit for bit, the float32 op's on the widened
    inputs and upstream gradient, rounded once."""
    rng = np.random.default_rng(0)
    B, L, H, E = 2, 96, 2, 16
    qkv = rng.standard_normal((B, L, 3, H, E)).astype(dtype)
    up = rng.standard_normal((B, H, L, E)).astype(dtype)
    pad = np.ones((B, 1, 1, L), bool)
    pad[1, ..., L // 2:] = False
    kw = {"is_causal": True} if mask == "causal" else {"attn_mask": na.tensor(pad)}
    results = []
    for dt in (dtype, np.float32):
        src = na.tensor(qkv.astype(dt), requires_grad=True)
        q, k, v = (src[:, :, i].permute(0, 2, 1, 3) for i in range(3))
        out = F.scaled_dot_product_attention(q, k, v, **kw)
        if dt == dtype:
            assert out.dtype == dtype
            assert _saved_bytes(out) <= qkv.nbytes + pad.nbytes  # q, k, v as they were, and the mask
        out.backward(na.tensor(up.astype(dt)))
        results.append((out.detach().numpy(), src.grad.numpy()))
    (y, g), (y32, g32) = results
    np.testing.assert_array_equal(y.view(np.uint16), y32.astype(dtype).view(np.uint16))
    np.testing.assert_array_equal(g.view(np.uint16), g32.astype(dtype).view(np.uint16))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_on_half_input_keeps_only_its_input(dtype, approximate):
    """GELU on a half x keeps x for backward (torch's choice), not a float32 dy/dx twice its size; the
    gradient is dy/dx recomputed in float32 times the upstream gradient, rounded once."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 96)) * 3).astype(dtype)
    up = rng.standard_normal((64, 96)).astype(dtype)
    t = na.tensor(x, requires_grad=True)
    y = F.gelu(t, approximate=approximate)
    assert _saved_bytes(y) == x.nbytes
    y.backward(na.tensor(up))
    t32 = na.tensor(x.astype(np.float32), requires_grad=True)
    F.gelu(t32, approximate=approximate).backward(na.tensor(up.astype(np.float32)))
    want = t32.grad.numpy()  # the float32 op's gradient, from its saved dy/dx (float16 runs the NumPy twin,
    # whose tanh form loses ~1e-6 to cancellation in the negative tail, as its forward did before)
    np.testing.assert_allclose(t.grad.numpy().astype(np.float32), want, rtol=2 ** -7, atol=1e-5)
