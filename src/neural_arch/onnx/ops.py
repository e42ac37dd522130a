"""The op -> ONNX mapping table: one converter per op name (``graph.op_name``: the Function's
``op_name`` or class name, one Function per op in ``neural_arch/ops``). Every entry emits standard
ONNX ops; an op is written as its decomposition where ONNX has no single op for it (attention as
MatMul / Softmax / MatMul).

A converter ``conv(b, node, xs)`` gets the ``Builder``, the traced node (``node.params``: the keyword
arguments of the op's ``forward``) and the ONNX names of the node's tensor inputs, and returns the
ONNX name of the result. Re-pointing an op renamed in ``ops/`` is one line of the table.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.errors import ExportError
from neural_arch.graph.dims import Dim
from neural_arch.graph.ir import ConstRef

INT64_MAX = np.iinfo(np.int64).max


def _out(b, node):
    v = b.g.values[node.output]
    return v.shape, v.dtype


def _same_dtype(b, node, xs):
    """Cast inputs to the output's dtype (our ops promote; ONNX's arithmetic does not)."""
    _, dt = _out(b, node)
    return [b.cast(x, b.dtype(n), dt) if b.dtype(n).kind == dt.kind or dt.kind == "f" else x
            for x, n in zip(xs, node.inputs)]


def binary(op):
    def conv(b, node, xs):
        return b.add(op, _same_dtype(b, node, xs))
    return conv


def unary(op, **attrs):
    def conv(b, node, xs):
        return b.add(op, [xs[0]], **attrs)
    return conv


def _scalar_like(b, node, v):
    return b.scalar(v, b.dtype(node.inputs[0]))


# -- elementwise ---------------------------------------------------------------------------------------
def rsqrt(b, node, xs):
    return b.add("Reciprocal", [b.add("Sqrt", [xs[0]])])


def log1p(b, node, xs):
    return b.add("Log", [b.add("Add", [xs[0], _scalar_like(b, node, 1)])])


def expm1(b, node, xs):
    return b.add("Sub", [b.add("Exp", [xs[0]]), _scalar_like(b, node, 1)])


def pow_scalar(b, node, xs):
    p = node.params["p"]
    if p == 2:
        return b.add("Mul", [xs[0], xs[0]])
    return b.add("Pow", [xs[0], _scalar_like(b, node, p)])


def clip(b, node, xs):
    """Clamp and Hardtanh (params ``lo``, ``hi``, either None): Clip with its absent bounds left out."""
    lo, hi = node.params["lo"], node.params["hi"]
    ins = [xs[0], "" if lo is None else _scalar_like(b, node, lo), "" if hi is None else _scalar_like(b, node, hi)]
    while ins[-1] == "":
        ins.pop()
    return b.add("Clip", ins)


def where(b, node, xs):
    cond = b.value(node.params["cond"])
    if b.dtype(node.params["cond"]) != np.bool_:
        cond = b.add("Cast", [cond], to=9)
    x, y = _same_dtype(b, node, xs)
    return b.add("Where", [cond, x, y])


def zero_grad(b, node, xs):
    fn = node.params["fn"]
    ops = {np.sign: "Sign", np.floor: "Floor", np.ceil: "Ceil"}
    if fn in ops:
        return b.add(ops[fn], [xs[0]])
    raise ExportError(f"onnx.export: {node.op} with {fn} has no ONNX mapping (in {node.module or 'the top level'})")


# -- activations ----------------------------------------------------------------------------------------
def gelu(b, node, xs):
    x = xs[0]
    tanh = node.params.get("approximate") == "tanh"
    if b.opset >= 20:
        return b.add("Gelu", [x], approximate="tanh" if tanh else "none")
    half = b.add("Mul", [x, _scalar_like(b, node, 0.5)])
    if tanh:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.add("Mul", [b.add("Mul", [x, x]), x])
        inner = b.add("Add", [x, b.add("Mul", [cube, _scalar_like(b, node, 0.044715)])])
        t = b.add("Tanh", [b.add("Mul", [inner, _scalar_like(b, node, math.sqrt(2 / math.pi))])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = b.add("Erf", [b.add("Mul", [x, _scalar_like(b, node, 1 / math.sqrt(2))])])
    return b.add("Mul", [half, b.add("Add", [t, _scalar_like(b, node, 1)])])


def silu(b, node, xs):
    alpha = node.params.get("alpha", 1.0)
    z = xs[0] if alpha == 1 else b.add("Mul", [xs[0], _scalar_like(b, node, alpha)])
    return b.add("Mul", [xs[0], b.add("Sigmoid", [z])])


def softplus(b, node, xs):
    beta = node.params.get("beta", 1.0)
    if beta == 1:
        return b.add("Softplus", [xs[0]])
    z = b.add("Softplus", [b.add("Mul", [xs[0], _scalar_like(b, node, beta)])])
    return b.add("Div", [z, _scalar_like(b, node, beta)])


def mish(b, node, xs):
    return b.add("Mul", [xs[0], b.add("Tanh", [b.add("Softplus", [xs[0]])])])


def log_sigmoid(b, node, xs):
    return b.add("Neg", [b.add("Softplus", [b.add("Neg", [xs[0]])])])


def elu(b, node, xs):
    p = node.params
    x = xs[0] if p["input_scale"] == 1 else b.add("Mul", [xs[0], _scalar_like(b, node, p["input_scale"])])
    y = b.add("Elu", [x], alpha=float(p["alpha"]))
    return y if p["scale"] == 1 else b.add("Mul", [y, _scalar_like(b, node, p["scale"])])


def leaky_relu(b, node, xs):
    return b.add("LeakyRelu", [xs[0]], alpha=float(node.params["slope"]))


def softmax(b, node, xs):
    """Softmax(axis, log): ONNX Softmax, or LogSoftmax when ``log``."""
    axis = node.params["axis"]
    if isinstance(axis, (tuple, list)):
        if len(axis) != 1:
            raise ExportError(f"onnx.export: {node.op} over several axes {axis} (in {node.module}) has no mapping")
        axis = axis[0]
    return b.add("LogSoftmax" if node.params["log"] else "Softmax", [xs[0]], axis=int(axis))


# -- linear algebra -------------------------------------------------------------------------------------
def linear(b, node, xs):
    """y = x W^T + b (W stored (out, in))."""
    wname = node.inputs[1]
    if b.fold and b.g.values[wname].kind in ("param", "buffer"):
        wt = b.initializer(np.ascontiguousarray(b.g.values[wname].data.T), wname + ".T")
    else:
        wt = b.add("Transpose", [xs[1]], perm=[1, 0])
    y = b.add("MatMul", [xs[0], wt])
    return b.add("Add", [y, xs[2]]) if len(xs) > 2 else y


def einsum(b, node, xs):
    return b.add("Einsum", xs, equation=",".join(node.params["subs"]) + "->" + node.params["out"])


def embedding(b, node, xs):
    ref = node.params["ids"]  # the ids are a parameter of the op (an array), here a graph value
    return b.add("Gather", [xs[0], b.value(ref)], axis=0)


# -- shapes ----------------------------------------------------------------------------------------------
def reshape(b, node, xs):
    return b.add("Reshape", [xs[0], b.shape(node.params["shape"])])


def permute(b, node, xs):
    return b.add("Transpose", [xs[0]], perm=[int(a) for a in node.params["axes"]])


def expand(b, node, xs):
    return b.add("Expand", [xs[0], b.shape(node.params["shape"])])


def tile(b, node, xs):
    reps = list(node.params["reps"])
    nd = len(b.vshape(node.inputs[0]))
    x = xs[0]
    if len(reps) > nd:
        x = b.add("Reshape", [x, b.shape([1] * (len(reps) - nd) + list(b.vshape(node.inputs[0])))])
    reps = [1] * (nd - len(reps)) + reps
    return b.add("Tile", [x, b.shape(reps)])


def cat(b, node, xs):
    return b.add("Concat", _same_dtype(b, node, xs), axis=int(node.params["axis"]))


def stack(b, node, xs):
    axis = int(node.params["axis"])
    return b.add("Concat", [b.add("Unsqueeze", [x, b.ints([axis])]) for x in _same_dtype(b, node, xs)], axis=axis)


def flip(b, node, xs):
    axes = node.params["axes"]
    axes = [int(a) for a in (axes if isinstance(axes, (tuple, list)) else [axes])]
    n = len(axes)
    return b.add("Slice", [xs[0], b.ints([-1] * n), b.ints([-INT64_MAX] * n), b.ints(axes), b.ints([-1] * n)])


def triangle(b, node, xs):
    return b.add("Trilu", [xs[0], b.scalar_dim(node.params["k"])], upper=int(node.params["upper"]))


def constant_pad(b, node, xs):
    widths = node.params["widths"]
    begins, ends = [lo for lo, _ in widths], [hi for _, hi in widths]
    return b.add("Pad", [xs[0], b.shape(begins + ends), _scalar_like(b, node, node.params["value"])], mode="constant")


def index(b, node, xs):
    """x[idx]: slices (and ints, as slices of one) in one Slice, array indices as Gather / GatherND,
    then a Reshape to the result's shape (drops the int axes, adds the None axes)."""
    idx = node.params["idx"]
    items = list(idx) if isinstance(idx, tuple) else [idx]
    nd = len(b.vshape(node.inputs[0]))
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (nd - used)
    starts, ends, axes, steps, arrays = [], [], [], [], []
    axis = 0
    for it in items:
        if it is None:
            continue
        if isinstance(it, ConstRef):
            if b.dtype(it) == np.bool_:
                raise ExportError(f"onnx.export: a boolean mask index (in {node.module or 'the top level'}) has no "
                                  "ONNX mapping (its result's shape depends on the data); use masked_fill or where")
            arrays.append((axis, it))
        elif isinstance(it, slice):
            if it != slice(None):
                step = 1 if it.step is None else it.step
                lo = it.start if it.start is not None else (0 if _positive(step) else -1)
                hi = it.stop if it.stop is not None else (INT64_MAX if _positive(step) else -INT64_MAX)
                starts.append(lo), ends.append(hi), axes.append(axis), steps.append(step)
        elif isinstance(it, (int, Dim)):
            starts.append(it), ends.append(INT64_MAX if (isinstance(it, int) and it == -1) else _plus_one(it))
            axes.append(axis), steps.append(1)
        else:
            raise ExportError(f"onnx.export: index {it!r} in {node.module or 'the top level'} has no ONNX mapping "
                              "(boolean masks give data-dependent shapes)")
        axis += 1
    x = xs[0]
    if starts:
        x = b.add("Slice", [x, b.shape(starts), b.shape(ends), b.ints(axes), b.shape(steps)])
    if len(arrays) == 1:
        axis, ref = arrays[0]
        x = b.add("Gather", [x, b.cast(b.value(ref), b.dtype(ref), np.int64)], axis=axis)
    elif arrays:
        if [a for a, _ in arrays] != list(range(len(arrays))):
            raise ExportError(f"onnx.export: several index arrays that are not the leading axes (in "
                              f"{node.module or 'the top level'}) have no ONNX mapping")
        parts = [b.add("Unsqueeze", [b.cast(b.value(r), b.dtype(r), np.int64), b.ints([-1])]) for _, r in arrays]
        x = b.add("GatherND", [x, b.add("Concat", parts, axis=-1)])
    shape, _ = _out(b, node)
    return b.add("Reshape", [x, b.shape(shape)])


def _positive(step) -> bool:
    return not isinstance(step, int) or step > 0


def _plus_one(d):
    if isinstance(d, Dim):
        terms = dict(d.terms)
        terms[frozenset()] = terms.get(frozenset(), 0) + 1
        return Dim(terms)
    return d + 1


def gather(op):
    """Gather / GatherElements along ``axis`` at the op's ``index`` array."""
    def conv(b, node, xs):
        ref = node.params["index"]
        return b.add(op, [xs[0], b.cast(b.value(ref), b.dtype(ref), np.int64)], axis=int(node.params["axis"]))
    return conv


def cumsum(b, node, xs):
    return b.add("CumSum", [xs[0], b.scalar(int(node.params["axis"]), np.int64)])


# -- reductions ------------------------------------------------------------------------------------------
def reduce(op):
    def conv(b, node, xs):
        p = node.params
        axes = p.get("axes", p.get("axis"))
        keep = p.get("keepdim", False)
        if op in ("ReduceMax", "ReduceMin") or p.get("use_min") is not None:
            r = "ReduceMin" if p.get("use_min") else "ReduceMax"
            return b.reduce(r, xs[0], axes, keep)
        x = xs[0]
        _, dt = _out(b, node)
        x = b.cast(x, b.dtype(node.inputs[0]), dt)
        return b.reduce(op, x, axes, keep)
    return conv


def var(b, node, xs):
    p = node.params
    x, axes = xs[0], p["axes"]
    d = b.add("Sub", [x, b.reduce("ReduceMean", x, axes, True)])
    m = b.reduce("ReduceMean", b.add("Mul", [d, d]), axes, p["keepdim"])
    shape = b.g.values[node.inputs[0]].example_shape
    n = math.prod(shape[a] for a in (axes if axes is not None else range(len(shape))))
    if p["correction"]:
        if any(isinstance(b.vshape(node.inputs[0])[a], Dim) for a in (axes or range(len(shape)))):
            raise ExportError(f"onnx.export: var with correction over a dynamic axis (in {node.module}) has no mapping")
        m = b.add("Mul", [m, _scalar_like(b, node, n / (n - p["correction"]))])
    return m


# -- normalisation ----------------------------------------------------------------------------------------
def _trailing_axis(b, node, d):
    shape = b.g.values[node.inputs[0]].example_shape
    size, k = 1, 0
    while size < d:
        k += 1
        size *= shape[-k]
    return -k


def layer_norm(b, node, xs):
    """LayerNorm: ONNX LayerNormalization over the trailing dims holding ``d`` elements."""
    p = node.params
    axis = _trailing_axis(b, node, p["d"])
    dt = b.dtype(node.inputs[0])
    tail = b.g.values[node.inputs[0]].example_shape[axis:]
    scale = xs[1] if p["has_w"] else b.const(np.ones(tail, dt), "ln_ones")
    scale = b.add("Reshape", [scale, b.ints(tail)])
    ins = [xs[0], scale]
    if p["has_b"]:
        ins.append(b.add("Reshape", [xs[-1], b.ints(tail)]))
    return b.add("LayerNormalization", ins, axis=axis, epsilon=float(p["eps"]))


def rms_norm(b, node, xs):
    """RMSNorm: x / sqrt(mean(x^2) + eps) * w over the trailing dims holding ``d`` elements."""
    p = node.params
    x, dt = xs[0], b.dtype(node.inputs[0])
    nd = len(b.vshape(node.inputs[0]))
    axes = tuple(range(nd + _trailing_axis(b, node, p["d"]), nd))
    ms = b.reduce("ReduceMean", b.add("Mul", [x, x]), axes, True)
    y = b.add("Mul", [x, b.add("Reciprocal", [b.add("Sqrt", [b.add("Add", [ms, b.scalar(p["eps"], dt)])])])])
    if len(xs) > 1:
        tail = b.g.values[node.inputs[0]].example_shape[nd - len(axes):]
        y = b.add("Mul", [y, b.add("Reshape", [xs[1], b.ints(tail)])])
    return y


def channel_norm(b, node, xs):
    """ChannelNorm: group_norm / instance_norm (statistics per sample and group; ``groups`` C for
    instance_norm) or, ``groups`` None, batch_norm with batch statistics."""
    p = node.params
    x, dt = xs[0], b.dtype(node.inputs[0])
    shape = b.vshape(node.inputs[0])
    c = shape[1]
    g = p["groups"]
    if g is None:
        axes = (0,) + tuple(range(2, len(shape)))
    else:  # statistics per (sample, group): over the last axis of x as (N, G, C / G * spatial)
        x, axes = b.add("Reshape", [x, b.shape([shape[0], g, -1])]), [2]
    cen = b.add("Sub", [x, b.reduce("ReduceMean", x, axes, True)])
    v = b.reduce("ReduceMean", b.add("Mul", [cen, cen]), axes, True)
    y = b.add("Div", [cen, b.add("Sqrt", [b.add("Add", [v, b.scalar(p["eps"], dt)])])])
    y = b.add("Reshape", [y, b.shape(shape)])
    view = b.ints([1, c] + [1] * (len(shape) - 2))
    rest = xs[1:]
    if p["has_w"]:
        y = b.add("Mul", [y, b.add("Reshape", [rest[0], view])])
        rest = rest[1:]
    if p["has_b"]:
        y = b.add("Add", [y, b.add("Reshape", [rest[0], view])])
    return y


# -- convolution and pooling ------------------------------------------------------------------------------
def conv2d(b, node, xs):
    """Conv2d (pads (top, bottom, left, right)) and DepthwiseConv2d (no ``groups``: one group per
    channel, weight (C, 1, kh, kw)) as ONNX Conv."""
    p = node.params
    top, bottom, left, right = p["pads"]
    w = b.g.values[node.inputs[1]].example_shape
    groups = p["groups"] if "groups" in p else w[0]
    return b.add("Conv", xs, kernel_shape=list(w[2:]), strides=list(p["stride"]), pads=[top, left, bottom, right],
                 dilations=list(p["dilation"]), group=int(groups))


def avg_pool(b, node, xs):
    p = node.params
    kh, kw = p["kernel"]
    top, bottom, left, right = p["pads"]
    if p["divisor"] not in (None, float(kh * kw)) and not isinstance(p["divisor"], ConstRef):
        raise ExportError(f"onnx.export: avg_pool2d with divisor_override (in {node.module}) has no ONNX mapping")
    return b.add("AveragePool", [xs[0]], kernel_shape=[kh, kw], strides=list(p["stride"]),
                 pads=[top, left, bottom, right], count_include_pad=1)


def adaptive_avg_pool(b, node, xs):
    """y = P_h x P_w^T with the (static) window matrices, exactly as the op computes it."""
    ph, pw = b.value(node.params["ph"]), b.value(node.params["pw"])
    pwt = b.add("Transpose", [pw], perm=[1, 0])
    return b.add("MatMul", [ph, b.add("MatMul", [xs[0], pwt])])


def max_pool(b, node, xs):
    """The op takes precomputed argmax indices; the window geometry comes from the nn.MaxPool2d module."""
    m = b.module(node.module)
    if m is None or not hasattr(m, "kernel_size") or not hasattr(m, "dilation"):
        raise ExportError(f"onnx.export: max pooling called as a function (in {node.module or 'the top level'}) "
                          "cannot be exported; use the nn.MaxPool2d module, whose window the exporter reads")

    def pair(v):
        return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]
    k, s, pd, d = pair(m.kernel_size), pair(m.stride or m.kernel_size), pair(m.padding), pair(m.dilation)
    return b.add("MaxPool", [xs[0]], kernel_shape=k, strides=s, pads=pd + pd, dilations=d,
                 ceil_mode=int(bool(getattr(m, "ceil_mode", False))))


# -- attention ---------------------------------------------------------------------------------------------
def attention(b, node, xs):
    """softmax(Q K^T scale + M) V as MatMul, Mul, Add, Softmax, MatMul; grouped K/V heads repeated."""
    p = node.params
    if p.get("drop") is not None:
        raise ExportError(f"onnx.export: attention dropout is on (in {node.module}); export the model in eval mode")
    q, k, v = xs[:3]
    dt = b.dtype(node.inputs[0])
    g = int(p["groups"])
    if g > 1:
        k, v = (_repeat_heads(b, x, b.vshape(n), g) for x, n in ((k, node.inputs[1]), (v, node.inputs[2])))
    nd = len(b.vshape(node.inputs[1]))
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    s = b.add("MatMul", [q, b.add("Transpose", [k], perm=perm)])
    s = b.add("Mul", [s, b.scalar(p["scale"], dt)])
    qs, ks = b.vshape(node.inputs[0]), b.vshape(node.inputs[1])
    if p.get("causal"):
        s = b.add("Add", [s, b.causal_mask(qs[-2], ks[-2], 0, 0.0, -np.inf, dt)])
    elif len(xs) > 3 or p.get("mask") is not None:
        mask_name = node.inputs[3] if len(xs) > 3 else p["mask"]
        mask = xs[3] if len(xs) > 3 else b.value(mask_name)
        if b.dtype(mask_name) == np.bool_:
            s = b.add("Where", [mask, s, b.scalar(-np.inf, dt)])
        else:
            s = b.add("Add", [s, b.cast(mask, b.dtype(mask_name), dt)])
    return b.add("MatMul", [b.add("Softmax", [s], axis=-1), v])


def _repeat_heads(b, x, shape, g):
    """(..., H, S, E) -> (..., H g, S, E), each head repeated g times in a row (np.repeat on axis -3)."""
    lead = list(shape[:-3])
    h, s, e = shape[-3:]
    x = b.add("Unsqueeze", [x, b.ints([len(shape) - 2])])
    x = b.add("Expand", [x, b.shape(lead + [h, g, s, e])])
    hg = h * g if isinstance(h, int) else Dim({k: c * g for k, c in h.terms.items()})
    return b.add("Reshape", [x, b.shape(lead + [hg, s, e])])


# -- the table --------------------------------------------------------------------------------------------
OPS = {
    # elementwise
    "Add": binary("Add"), "Sub": binary("Sub"), "Mul": binary("Mul"), "Div": binary("Div"),
    "Pow": binary("Pow"), "Maximum": binary("Max"), "Minimum": binary("Min"),
    "Neg": unary("Neg"), "Exp": unary("Exp"), "Log": unary("Log"), "Sqrt": unary("Sqrt"), "Sin": unary("Sin"),
    "Cos": unary("Cos"), "Tanh": unary("Tanh"), "Sigmoid": unary("Sigmoid"), "Abs": unary("Abs"),
    "Rsqrt": rsqrt, "Log1p": log1p, "Expm1": expm1, "PowScalar": pow_scalar, "Clamp": clip,
    "Where": where, "ZeroGrad": zero_grad,
    # activations
    "ReLU": unary("Relu"), "LeakyReLU": leaky_relu, "Hardtanh": clip, "GELU": gelu, "SiLU": silu,
    "Softplus": softplus, "Mish": mish, "LogSigmoid": log_sigmoid, "ELU": elu,
    "Hardswish": unary("HardSwish"), "Hardsigmoid": unary("HardSigmoid", alpha=1 / 6, beta=0.5),
    "Softmax": softmax,
    # linear algebra, embedding
    "Linear": linear, "MatMul": binary("MatMul"), "Einsum": einsum, "Embedding": embedding,
    # shapes and indexing
    "Reshape": reshape, "Permute": permute, "Expand": expand, "Tile": tile, "Cat": cat, "Stack": stack,
    "Flip": flip, "Triangle": triangle, "ConstantPad": constant_pad, "Index": index, "Gather": gather("GatherElements"),
    "IndexSelect": gather("Gather"), "CumSum": cumsum,
    # reductions
    "Sum": reduce("ReduceSum"), "Mean": reduce("ReduceMean"), "Prod": reduce("ReduceProd"),
    "AMax": reduce("ReduceMax"), "MaxDim": reduce("ReduceMax"), "LogSumExp": reduce("ReduceLogSumExp"),
    "Norm2": reduce("ReduceL2"), "Var": var,
    # normalisation
    "LayerNorm": layer_norm, "RMSNorm": rms_norm, "ChannelNorm": channel_norm,
    # convolution, pooling, attention
    "Conv2d": conv2d, "DepthwiseConv2d": conv2d, "AvgPool2d": avg_pool, "AdaptiveAvgPool2d": adaptive_avg_pool,
    "MaxPoolGather": max_pool,
    "ScaledDotProductAttention": attention,
}
