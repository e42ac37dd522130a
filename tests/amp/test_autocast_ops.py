"""Every op under autocast gives the output dtype torch 2.13's CPU autocast gives on the same inputs.

The table has one row per op (``Function`` subclass in ``neural_arch.ops``), written once for both
frameworks: ``fn(m, F, *inputs)`` with ``m`` = ``neural_arch`` or ``torch`` and ``F`` their functional
module. A new op without a row fails ``test_every_op_has_a_row``: add its row (or, for an op torch
has no counterpart of, a line in ``NO_TORCH_OP`` and a check of its own).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as tF  # noqa: E402

import neural_arch as na  # noqa: E402
import neural_arch.nn.functional as naF  # noqa: E402
from neural_arch.amp import ops_by_policy  # noqa: E402

rng = np.random.default_rng(0)


def r(*shape):
    return rng.normal(size=shape).astype(np.float32)


def pos(*shape):
    return rng.uniform(0.5, 2.0, size=shape).astype(np.float32)


def idx(*shape, high=3):
    return rng.integers(0, high, size=shape).astype(np.int64)


def prob(*shape):
    return rng.uniform(0.05, 0.95, size=shape).astype(np.float32)


def spd(n):
    """A symmetric positive-definite matrix that stays so when rounded to bfloat16."""
    a = r(n, n)
    return (a @ a.T + n * np.eye(n)).astype(np.float32)


def cplx(*shape):
    return (r(*shape) + 1j * r(*shape)).astype(np.complex64)


X, Y = r(3, 4), r(3, 4)
IMG, W33 = r(2, 3, 6, 6), r(4, 3, 3, 3)
Q, K, V = r(1, 2, 5, 8), r(1, 2, 5, 8), r(1, 2, 5, 8)
UNPOOL_INDEX = tF.max_pool2d(torch.tensor(IMG), 2, return_indices=True)[1].numpy()  # where max_pool2d found them

# op name: (fn(m, F, *inputs), inputs)
CASES = {
    # elementwise
    "Abs": (lambda m, F, x: m.abs(x), [X]),
    "Add": (lambda m, F, x, y: x + y, [X, Y]),
    "Clamp": (lambda m, F, x: m.clamp(x, -0.5, 0.5), [X]),
    "Cos": (lambda m, F, x: m.cos(x), [X]),
    "Div": (lambda m, F, x, y: x / y, [X, pos(3, 4)]),
    "Exp": (lambda m, F, x: m.exp(x), [X]),
    "Expm1": (lambda m, F, x: m.expm1(x), [X]),
    "Log": (lambda m, F, x: m.log(x), [pos(3, 4)]),
    "Log1p": (lambda m, F, x: m.log1p(x), [pos(3, 4)]),
    "Maximum": (lambda m, F, x, y: m.maximum(x, y), [X, Y]),
    "Minimum": (lambda m, F, x, y: m.minimum(x, y), [X, Y]),
    "Mul": (lambda m, F, x, y: x * y, [X, Y]),
    "Neg": (lambda m, F, x: -x, [X]),
    "Pow": (lambda m, F, x, y: x ** y, [pos(3, 4), Y]),
    "PowScalar": (lambda m, F, x: x ** 3, [X]),
    "Rsqrt": (lambda m, F, x: m.rsqrt(x), [pos(3, 4)]),
    "Sigmoid": (lambda m, F, x: m.sigmoid(x), [X]),
    "Sin": (lambda m, F, x: m.sin(x), [X]),
    "Sqrt": (lambda m, F, x: m.sqrt(x), [pos(3, 4)]),
    "Sub": (lambda m, F, x, y: x - y, [X, Y]),
    "Tanh": (lambda m, F, x: m.tanh(x), [X]),
    "Where": (lambda m, F, x, y: m.where(x > 0, x, y), [X, Y]),
    "ZeroGrad": (lambda m, F, x: m.floor(x), [X]),
    "Unary": (lambda m, F, x: m.tan(x), [X]),
    "Atan2": (lambda m, F, y, x: m.atan2(y, x), [X, Y]),
    "CopySign": (lambda m, F, x, y: m.copysign(x, y), [X, Y]),
    "Hypot": (lambda m, F, x, y: m.hypot(x, y), [X, Y]),
    "LogAddExp": (lambda m, F, x, y: m.logaddexp(x, y), [X, Y]),
    "XLogY": (lambda m, F, x, y: m.xlogy(x, y), [X, pos(3, 4)]),
    "NanToNum": (lambda m, F, x: m.nan_to_num(x), [X]),
    # complex numbers
    "Angle": (lambda m, F, x: m.angle(x), [X]),
    "Complex": (lambda m, F, x, y: m.complex(x, y), [X, Y]),
    "Conj": (lambda m, F, z: m.conj(z), [cplx(3, 4)]),
    "Real": (lambda m, F, z: m.real(z), [cplx(3, 4)]),
    "Imag": (lambda m, F, z: m.imag(z), [cplx(3, 4)]),
    "ViewAsReal": (lambda m, F, z: m.view_as_real(z), [cplx(3, 4)]),
    "Polar": (lambda m, F, a, t: m.polar(a, t), [pos(3, 4), X]),
    # activations
    "ELU": (lambda m, F, x: F.elu(x), [X]),
    "GELU": (lambda m, F, x: F.gelu(x), [X]),
    "Hardsigmoid": (lambda m, F, x: F.hardsigmoid(x), [X]),
    "Hardswish": (lambda m, F, x: F.hardswish(x), [X]),
    "Hardtanh": (lambda m, F, x: F.hardtanh(x), [X]),
    "LeakyReLU": (lambda m, F, x: F.leaky_relu(x, 0.1), [X]),
    "LogSigmoid": (lambda m, F, x: F.logsigmoid(x), [X]),
    "Mish": (lambda m, F, x: F.mish(x), [X]),
    "ReLU": (lambda m, F, x: F.relu(x), [X]),
    "SiLU": (lambda m, F, x: F.silu(x), [X]),
    "Softmax": (lambda m, F, x: F.softmax(x, -1), [X]),
    "Softplus": (lambda m, F, x: F.softplus(x), [X]),
    # reductions
    "AMax": (lambda m, F, x: m.amax(x, -1), [X]),
    "CumSum": (lambda m, F, x: m.cumsum(x, -1), [X]),
    "CumProd": (lambda m, F, x: m.cumprod(x, -1), [X]),
    "LogCumSumExp": (lambda m, F, x: m.logcumsumexp(x, -1), [X]),
    "LogSumExp": (lambda m, F, x: m.logsumexp(x, -1), [X]),
    "MaxDim": (lambda m, F, x: m.max(x, -1)[0], [X]),
    "Mean": (lambda m, F, x: x.mean(), [X]),
    "Norm2": (lambda m, F, x: x.norm(), [X]),
    "Prod": (lambda m, F, x: x.prod(), [X]),
    "Sum": (lambda m, F, x: x.sum(), [X]),
    "Var": (lambda m, F, x: x.var(), [X]),
    # shapes and indexing
    "Cat": (lambda m, F, x, y: m.cat([x, y]), [X, Y]),
    "Stack": (lambda m, F, x, y: m.stack([x, y]), [X, Y]),
    "ConstantPad": (lambda m, F, x: F.pad(x, (1, 1)), [X]),
    "Expand": (lambda m, F, x: x[None].expand(2, 3, 4), [X]),
    "Flip": (lambda m, F, x: m.flip(x, [0]), [X]),
    "Permute": (lambda m, F, x: x.permute(1, 0), [X]),
    "Reshape": (lambda m, F, x: x.reshape(-1), [X]),
    "Roll": (lambda m, F, x: m.roll(x, 1, 0), [X]),
    "Tile": (lambda m, F, x: m.tile(x, (2, 1)), [X]),
    "Triangle": (lambda m, F, x: m.triu(x), [X]),
    "Gather": (lambda m, F, x, i: m.gather(x, 1, i), [X, idx(3, 2)]),
    "Index": (lambda m, F, x, i: x[i], [X, idx(2)]),
    "IndexSelect": (lambda m, F, x, i: m.index_select(x, 0, i), [X, idx(2)]),
    "ScatterAdd": (lambda m, F, x, i, y: m.scatter_add(x, 1, i, y), [X, idx(3, 2), r(3, 2)]),
    "Embedding": (lambda m, F, i, w: F.embedding(i, w), [idx(5, high=4), r(4, 3)]),
    "Scatter": (lambda m, F, x, i, y: m.scatter(x, 1, i, y), [X, idx(3, 2), r(3, 2)]),
    "ScatterReduce": (lambda m, F, x, i, y: m.scatter_reduce(x, 1, i, y, "amax"), [X, idx(3, 2), r(3, 2)]),
    "PutRegion": (lambda m, F, x, i, v: m.index_put(x, (i,), v), [X, idx(2), r(4)]),
    "Diagonal": (lambda m, F, x: m.diagonal(x), [X]),
    "DiagEmbed": (lambda m, F, x: m.diag_embed(x), [X]),
    # products, convolutions, attention
    "MatMul": (lambda m, F, x, y: x @ y, [X, r(4, 2)]),
    "Einsum": (lambda m, F, x, y: m.einsum("ij,jk->ik", x, y), [X, r(4, 2)]),
    "Linear": (lambda m, F, x, w, b: F.linear(x, w, b), [X, r(5, 4), r(5)]),
    "Conv2d": (lambda m, F, x, w: F.conv2d(x, w, padding=1), [IMG, W33]),
    "ConvTranspose2d": (lambda m, F, x, w: F.conv_transpose2d(x, w), [IMG, r(3, 2, 3, 3)]),
    "DepthwiseConv2d": (lambda m, F, x, w: F.conv2d(x, w, padding=1, groups=3), [IMG, r(3, 1, 3, 3)]),
    "Unfold": (lambda m, F, x: F.unfold(x, 2), [IMG]),
    "Fold": (lambda m, F, x: F.fold(x, (4, 4), 2), [r(1, 12, 9)]),
    "ScaledDotProductAttention": (lambda m, F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                  [Q, K, V]),
    # linear algebra, Fourier transforms
    "Det": (lambda m, F, a: m.linalg.det(a), [spd(3)]),
    "LogAbsDet": (lambda m, F, a: m.linalg.slogdet(a)[1], [spd(3)]),
    "Inv": (lambda m, F, a: m.linalg.inv(a), [spd(3)]),
    "Solve": (lambda m, F, a, b: m.linalg.solve(a, b), [spd(3), r(3, 2)]),
    "Cholesky": (lambda m, F, a: m.linalg.cholesky(a), [spd(3)]),
    "QR": (lambda m, F, x: m.linalg.qr(x)[1], [r(4, 3)]),
    "SVD": (lambda m, F, x: m.linalg.svd(x, full_matrices=False)[1], [X]),
    "Eigh": (lambda m, F, a: m.linalg.eigh(a)[1], [spd(3)]),
    "FFTC2C": (lambda m, F, x: m.fft.fft(x), [X]),
    "FFTR2C": (lambda m, F, x: m.fft.rfft(x), [X]),
    "FFTC2R": (lambda m, F, x: m.fft.irfft(x), [X]),
    # sampling
    "StandardGamma": (lambda m, F, a, b: m.distributions.Gamma(a, b).rsample(), [pos(3, 4), pos(3, 4)]),
    # pooling, resizing, normalisation, dropout
    "AdaptiveAvgPool2d": (lambda m, F, x: F.adaptive_avg_pool2d(x, 2), [IMG]),
    "AvgPool2d": (lambda m, F, x: F.avg_pool2d(x, 2), [IMG]),
    "MaxPoolGather": (lambda m, F, x: F.max_pool2d(x, 2), [IMG]),
    "LinearResize": (lambda m, F, x: F.interpolate(x, scale_factor=2, mode="bilinear"), [IMG]),
    "NearestResize": (lambda m, F, x: F.interpolate(x, scale_factor=2, mode="nearest"), [IMG]),
    "LayerNorm": (lambda m, F, x, w, b: F.layer_norm(x, (4,), w, b), [X, r(4), r(4)]),
    "RMSNorm": (lambda m, F, x, w: F.rms_norm(x, (4,), w), [X, r(4)]),
    "ChannelNorm": (lambda m, F, x, w, b: F.group_norm(x, 1, w, b), [IMG, r(3), r(3)]),
    "CounterDropout": (lambda m, F, x: F.dropout(x, 0.5, training=True), [X]),
    "GridSample2d": (lambda m, F, x, g: F.grid_sample(x, g, align_corners=False), [IMG, prob(2, 4, 4, 2) * 2 - 1]),
    "MaxUnpool": (lambda m, F, x, i: F.max_unpool2d(x, i, 2), [r(2, 3, 3, 3), UNPOOL_INDEX]),
    # recurrent layers (the module's parameters are float32; its state starts as zeros of the input's dtype)
    "RNNLayer": (lambda m, F, x: m.nn.RNN(4, 5, batch_first=True)(x)[0], [r(2, 3, 4)]),
    "LSTMLayer": (lambda m, F, x: m.nn.LSTM(4, 5, batch_first=True)(x)[0], [r(2, 3, 4)]),
    "GRULayer": (lambda m, F, x: m.nn.GRU(4, 5, batch_first=True)(x)[0], [r(2, 3, 4)]),
    # nn.LSTM's layer pairs (ops/recurrent_wave.py) outside autocast; under it, one LSTMLayer per layer
    "LSTMPairLayer": (lambda m, F, x: m.nn.LSTM(4, 5, num_layers=2)(x)[0], [r(12, 3, 4)]),
    # losses
    "ClassNLL": (lambda m, F, x, t: F.cross_entropy(x, t), [X, idx(3, high=4)]),
    "SoftTargetCrossEntropy": (lambda m, F, x, p: F.cross_entropy(x, p), [X, prob(3, 4)]),
    "SquaredError": (lambda m, F, x, y: F.mse_loss(x, y), [X, Y]),
    "PointwiseLoss": (lambda m, F, x, y: F.l1_loss(x, y), [X, Y]),
    "BCEWithLogits": (lambda m, F, x, p: F.binary_cross_entropy_with_logits(x, p), [X, prob(3, 4)]),
    "BinaryCrossEntropy": (lambda m, F, p, q: F.binary_cross_entropy(p, q), [prob(3, 4), prob(3, 4)]),
    "KLDiv": (lambda m, F, x, y: F.kl_div(x, y, reduction="batchmean"), [X, prob(3, 4)]),
    "CTCLoss": (lambda m, F, lp, t, il, tl: F.ctc_loss(F.log_softmax(lp, -1), t, il, tl),
                [r(6, 2, 4), idx(2, 3, high=3) + 1, np.array([6, 5]), np.array([3, 2])]),
}
CASES.update({  # the coverage stream's ops (appended)
    "RegularizedGamma": (lambda m, F, a, x: m.igamma(a, x) + m.igammac(a, x), [pos(3, 4), pos(3, 4)]),
    "GroupedMM": (lambda m, F, a, b: F.grouped_mm(a, b, offs=m.tensor(np.array([2, 4], dtype=np.int32))),
                  [r(4, 8), r(2, 8, 4)]),
})

# Ops with no torch function of their own (internal pieces of composite functions, or ops torch lacks):
# each is checked by the function that uses it above, or only for "follows its inputs" below.
NO_TORCH_OP = {
    "Dropout": "the mask-array dropout (dropout1d/2d, alpha dropout); CounterDropout is F.dropout",
    "PermuteRows": "the MoE token permutation (ops/moe.py); torch's model does x[order]",
    "SelectiveScan": "Mamba's scan; transformers' slow path composes elementwise ops",
    "CausalDepthwiseConv1d": "Mamba's causal conv1d; torch runs F.conv1d (on the low-precision list)",
    "_ClampMinPassGrad": "a piece of cosine_similarity's norm",
}

LOW = {"bfloat16": (na.bfloat16, torch.bfloat16), "float16": (na.float16, torch.float16)}


def _run(fn, arrays, dtypes, low):
    """fn's output dtype in both frameworks under autocast(dtype=low); float inputs cast to ``dtypes``."""
    na_low, t_low = LOW[low]
    ours, theirs = [], []
    for a, d in zip(arrays, dtypes):
        if a.dtype.kind == "f":
            ours.append(na.tensor(a).to(getattr(na, d)))
            theirs.append(torch.tensor(a).to(getattr(torch, d)))
        else:
            ours.append(na.tensor(a))
            theirs.append(torch.tensor(a))
    try:
        with torch.autocast("cpu", dtype=t_low):
            expected = str(fn(torch, tF, *theirs).dtype).removeprefix("torch.")
    except RuntimeError as e:
        if "primitive descriptor" not in str(e):
            raise
        # oneDNN has no kernel for the op in ``low`` on this CPU (LSTM in float16 without AVX512-FP16): the
        # op is on the low-precision list, and a CPU that has the kernel gives ``low``
        expected = low
    with na.autocast("cpu", dtype=na_low):
        got = fn(na, naF, *ours).dtype
    return str(got), expected


def test_every_op_has_a_row():
    every = {name for names in ops_by_policy().values() for name in names}
    missing = sorted(every - set(CASES) - set(NO_TORCH_OP))
    assert missing == [], f"ops without an autocast row in tests/amp/test_autocast_ops.py: {missing}"
    assert sorted((set(CASES) | set(NO_TORCH_OP)) - every) == []  # no row for an op that is gone


@pytest.mark.parametrize("low", sorted(LOW))
@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_inputs(name, low):
    """float32 in: the low-precision list runs in ``low``, everything else stays float32."""
    fn, arrays = CASES[name]
    got, expected = _run(fn, arrays, ["float32"] * len(arrays), low)
    assert got == expected, f"{name} under autocast({low}): ours {got}, torch {expected}"


LOW_IN = sorted(set(ops_by_policy().get("fp32", ())) | {"MatMul", "Linear", "Conv2d", "Einsum", "RNNLayer",
                                                         "LSTMLayer", "GRULayer"})
# (op, input dtype, autocast dtype) where torch's CPU result comes from another path than the list's
TORCH_PATH_DEPENDENT = {
    ("LSTMLayer", "float16", "bfloat16"): "a float16 input (with grad on) makes torch leave oneDNN's LSTM (on "
    "the list) for its composed cell, whose float16 state and bfloat16 gates promote to float32; ours is lowered",
}


@pytest.mark.parametrize("low", sorted(LOW))
@pytest.mark.parametrize("name", LOW_IN)
def test_low_precision_inputs(name, low):
    """bfloat16/float16 in: the float32 list casts up (the losses return float32), the low list casts
    to the autocast dtype (a float16 input under bfloat16 autocast becomes bfloat16)."""
    fn, arrays = CASES[name]
    for other in LOW:
        if (name, other, low) in TORCH_PATH_DEPENDENT:
            continue
        got, expected = _run(fn, arrays, [other] * len(arrays), low)
        assert got == expected, f"{name}({other} inputs) under autocast({low}): ours {got}, torch {expected}"


# Functions on torch's float32 list that we compose of several ops (or that check dtypes before their op):
# they cast their inputs at entry (lstsq and pinverse also keep the matmuls inside in float32).
COMPOSITES = {
    "cdist": (lambda m, F, x, y: m.cdist(x, y), [X, Y]),
    "lstsq": (lambda m, F, a, b: m.linalg.lstsq(a, b)[0], [spd(3), r(3, 2)]),
    "matrix_rank": (lambda m, F, x: m.linalg.matrix_rank(x).float(), [X]),
    "pinverse": (lambda m, F, x: m.pinverse(x), [X]),
    "quantile": (lambda m, F, x: m.quantile(x, 0.3), [X]),
    "trace": (lambda m, F, a: m.trace(a), [spd(3)]),
    "view_as_complex": (lambda m, F, x: m.view_as_complex(x), [r(3, 2, 2)]),
    "hfft": (lambda m, F, x: m.fft.hfft(x), [X]),
    "svdvals": (lambda m, F, x: m.linalg.svdvals(x), [X]),
}


@pytest.mark.parametrize("low", sorted(LOW))
@pytest.mark.parametrize("inputs", ["float32", *sorted(LOW)])
@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_float32_list_compositions(name, inputs, low):
    fn, arrays = COMPOSITES[name]
    got, expected = _run(fn, arrays, [inputs] * len(arrays), low)
    assert got == expected, f"{name}({inputs} inputs) under autocast({low}): ours {got}, torch {expected}"
    assert expected in ("float32", "complex64")  # torch ran it in float32


@pytest.mark.parametrize("low", sorted(LOW))
@pytest.mark.parametrize("inputs", ["float32", *sorted(LOW)])
@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell", "LSTM(proj_size=3)"])
def test_recurrent_cells(cell, inputs, low):
    """The cells run the layers' ops, but torch's LSTMCell is its composed cell, not oneDNN's LSTM: the gates
    are lowered and mixed with the state in the state's dtype, as GRU's. An LSTM with proj_size is that cell
    in torch too, but its output is a projection (linear, lowered); only its c_n differs from ours (float32
    from a float32 c0 there, lowered here)."""
    if cell.startswith("LSTM("):
        fn = lambda m, F, x: m.nn.LSTM(4, 5, proj_size=3)(x)[0]  # noqa: E731
    else:
        fn = lambda m, F, x: m.nn.__dict__[cell](4, 5)(x)[0]  # noqa: E731 - h' (RNN, GRU: its first row)
    got, expected = _run(fn, [r(2, 4)], [inputs], low)
    assert got == expected, f"{cell}({inputs} input) under autocast({low}): ours {got}, torch {expected}"


@pytest.mark.parametrize("inputs, expected", [
    (("bfloat16", "float32"), "float32"), (("bfloat16", "bfloat16"), "bfloat16"),
    (("bfloat16", "float64"), "float64"), (("float32", "float64"), "float64"),
])
@pytest.mark.parametrize("name", ["Cat", "Stack"])
def test_promote_takes_the_widest_input(name, inputs, expected):
    fn, arrays = CASES[name]
    got, torch_dtype = _run(fn, arrays, inputs, "bfloat16")
    assert got == torch_dtype == expected


def test_float64_is_never_cast():
    fn, arrays = CASES["Linear"]
    got, expected = _run(fn, arrays, ["float64"] * 3, "bfloat16")
    assert got == expected == "float64"


@pytest.mark.parametrize("name", ["PermuteRows", "SelectiveScan", "CausalDepthwiseConv1d"])
def test_ops_without_a_torch_twin_follow_or_lower_as_declared(name):
    """The ops torch has no function for: float32 in, and their declared policy decides the output."""
    from neural_arch.ops.moe import permute_rows
    from neural_arch.ops.scan import causal_depthwise_conv1d, selective_scan

    x = na.tensor(r(2, 5, 3))  # (batch, time, channels)
    with na.autocast("cpu"):
        if name == "PermuteRows":
            out = permute_rows(na.tensor(X), np.array([2, 0, 1]))
        elif name == "SelectiveScan":
            out = selective_scan(x, na.tensor(pos(2, 5, 3)), na.tensor(-pos(3, 4)), na.tensor(r(2, 5, 4)),
                                 na.tensor(r(2, 5, 4)))
        else:
            out = causal_depthwise_conv1d(x, na.tensor(r(3, 4)), na.tensor(r(3)))
    out = out[0] if isinstance(out, tuple) else out
    assert out.dtype == (na.bfloat16 if name == "CausalDepthwiseConv1d" else na.float32)
