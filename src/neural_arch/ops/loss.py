"""Loss functions: cross_entropy (fused with log_softmax), nll_loss, mse/l1/smooth_l1/huber,
binary_cross_entropy (+ with logits), kl_div; cosine_similarity and normalize.

``reduction`` is ``'none'``, ``'mean'`` or ``'sum'`` everywhere, with torch's
meaning of "mean" (for class-index targets with ``weight``: divided by the sum
of the weights of the targets that count, not by their number).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from neural_arch.autograd.autocast import FP32
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.kernels import elementwise as ew
from neural_arch.backend.kernels import softmax_loss as kern
from neural_arch.backend.kernels.activation import sigmoid_array, softplus_array
from neural_arch.errors import ConfigError, DataError, DTypeError, IndexingError, ShapeError, shape_str
from neural_arch.ops import reduce as _r
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops._operands import array_of, binary_operands, floating
from neural_arch.ops.elementwise import clamp
from neural_arch.ops.shape import broadcast_tensors, unsqueeze

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "cosine_similarity", "normalize",
]

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction, size_average=None, reduce=None, op="loss", allowed=_REDUCTIONS) -> str:
    """torch's legacy ``size_average`` / ``reduce`` flags, then a check of ``reduction``."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in allowed:
        raise ConfigError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _r.mean(loss)
    if reduction == "sum":
        return _r.sum(loss)
    return loss


# -- cross entropy and nll: class-index targets ------------------------------------------------------------
class ClassNLL(Function):
    """Negative log-likelihood of class ``t`` along axis 1, fused with log_softmax for cross_entropy.

    With logp = log_softmax(x) (or logp = x for nll_loss), weights w, smoothing e over C classes,
    per position (ignored targets contribute 0):

        l = -(1 - e) w_t logp_t - (e / C) sum_c w_c logp_c
        reduction 'mean': sum(l) / sum(w_t over non-ignored targets),   'sum': sum(l)

    Backward, with a_c = (1 - e) w_t [c = t] + (e / C) w_c the coefficients of logp_c:

        cross_entropy:  dl/dx_c = p_c sum_k a_k - a_c          (p = softmax(x) = e^{logp})
        nll_loss:       dl/dlogp_c = -a_c

    computed by the forward pass (``backend.kernels.softmax_loss.class_nll``) and scaled by the
    upstream gradient here.
    """

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, smoothing, reduction, fused, op):
        loss, dx, total, denom, bad = kern.class_nll(x, target, weight, ignore_index, smoothing, fused,
                                                     bool(ctx.needs_input_grad[0]))
        if bad:
            _check_targets(target, x.shape[1], ignore_index, op)
        ctx.save_for_backward(dx)
        ctx.reduction, ctx.denom = reduction, denom
        if reduction == "none":
            return loss
        if reduction == "sum":
            return np.asarray(total, dtype=x.dtype)
        return np.asarray(total / denom if denom else np.nan, dtype=x.dtype)  # all ignored: NaN, as torch

    @staticmethod
    def backward(ctx, grad):
        (dx,) = ctx.saved_tensors
        if ctx.reduction == "none":
            return dx * np.expand_dims(grad, 1)
        scale = float(grad)
        if ctx.reduction == "mean":
            scale = scale / ctx.denom if ctx.denom else 0.0  # all targets ignored: the gradient is 0, as torch's
        return ew.scale(dx, scale)


class SoftTargetCrossEntropy(Function):
    """Cross entropy against class probabilities q (soft targets), fused with log_softmax:

        l = -sum_c w_c q'_c logp_c,   q' = (1 - e) q + e / C
        reduction 'mean': sum(l) / (number of positions) -- weights do not enter the divisor here
        dl/dx_c = p_c sum_k a_k - a_c  (a_c = w_c q'_c),    dl/dq_c = -(1 - e) w_c logp_c
    """

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, q, weight, smoothing, reduction):
        logp = kern.softmax(x, (1,), True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        a = q if not smoothing else (1 - smoothing) * q + smoothing / x.shape[1]
        w = None if weight is None else weight.reshape(shape)
        if w is not None:
            a = a * w
        loss = -(a * logp).sum(axis=1)
        ctx.save_for_backward(logp, a, w)
        ctx.smoothing, ctx.reduction, ctx.n = smoothing, reduction, loss.size
        if reduction == "none":
            return loss
        total = loss.sum()
        return total if reduction == "sum" else (total / loss.size).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        logp, a, w = ctx.saved_tensors
        if ctx.reduction == "none":
            gl = np.expand_dims(grad, 1)
        else:
            gl = grad if ctx.reduction == "sum" else grad / ctx.n
        gx = gl * (np.exp(logp) * a.sum(axis=1, keepdims=True) - a) if ctx.needs_input_grad[0] else None
        gq = None
        if ctx.needs_input_grad[1]:
            gq = -(1 - ctx.smoothing) * gl * (logp if w is None else logp * w)
        return gx, gq


def _class_input(input: Tensor, target, weight, op: str):
    """Validate (input, target, weight); return arrays with a batch dim, and whether one was added."""
    x = floating(input, op).data
    if x.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dim, got a 0-d tensor")
    t = array_of(target)
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    if weight is not None:
        wd = array_of(weight)
        if wd.shape != (c,):
            raise ShapeError(f"{op}: weight must have shape ({c},) (one per class), got {shape_str(wd.shape)}")
    return x, t, c


def _weight_array(weight, like):
    """``weight`` (a Tensor, an array or None) as an array of ``like``'s dtype."""
    if weight is None:
        return None
    w = array_of(weight)
    return w.astype(like.dtype, copy=False)


def _check_target_dtype(t, op):
    if t.dtype.kind not in "iu":
        raise DTypeError(f"{op}: class-index targets must be integers, got {t.dtype}")


def _check_targets(t, c, ignore_index, op):
    """Integer targets in [0, c) or ``ignore_index``."""
    _check_target_dtype(t, op)
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        v = int(t[bad].flat[0])
        raise IndexingError(f"{op}: target {v} is out of bounds for {c} classes "
                            f"(valid: 0..{c - 1}, or ignore_index={ignore_index})")


def _class_target_shape(x, t, op):
    want = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.shape != want:
        raise ShapeError(f"{op}: input {shape_str(x.shape)} needs class-index targets of shape {shape_str(want)}, "
                         f"got {shape_str(t.shape)}")


def _nll(input, target, weight, ignore_index, reduction, smoothing, fused, op):
    x, t, c = _class_input(input, target, weight, op)
    _class_target_shape(x, t, op)
    _check_target_dtype(t, op)
    w = _weight_array(weight, x)
    inp = input
    if x.ndim == 1:  # (C,) with a 0-d target: a batch of one
        inp, t = unsqueeze(input, 0), t.reshape(1)
    out = ClassNLL.apply(inp, target=t, weight=w, ignore_index=ignore_index, smoothing=smoothing,
                         reduction=reduction, fused=fused, op=op)
    return out.reshape(()) if x.ndim == 1 and reduction == "none" else out


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between logits ``input`` (N, C, d1, ...) or (C,) and ``target``: class
    indices (N, d1, ...) (with ``ignore_index``) or class probabilities of the input's shape.
    One fused node: log_softmax + nll + label smoothing."""
    reduction = _reduction(reduction, size_average, reduce, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ConfigError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    tdata = array_of(target)
    if not is_floating(tdata.dtype):
        return _nll(input, target, weight, ignore_index, reduction, label_smoothing, True, "cross_entropy")
    # probability targets
    x, t, c = _class_input(input, target, weight, "cross_entropy")
    if t.shape != x.shape:
        raise ShapeError(f"cross_entropy: probability targets must have the input's shape {shape_str(x.shape)}, "
                         f"got {shape_str(t.shape)}")
    tt = target if isinstance(target, Tensor) else Tensor(t)
    inp, tt = binary_operands(input, tt)
    w = _weight_array(weight, inp.data)
    if x.ndim == 1:
        out = SoftTargetCrossEntropy.apply(inp.reshape(1, -1), tt.reshape(1, -1), weight=w,
                                           smoothing=label_smoothing, reduction=reduction)
        return out.reshape(()) if reduction == "none" else out
    return SoftTargetCrossEntropy.apply(inp, tt, weight=w, smoothing=label_smoothing, reduction=reduction)


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] (input holds log-probabilities), weighted and reduced as torch."""
    reduction = _reduction(reduction, size_average, reduce, "nll_loss")
    return _nll(input, target, weight, ignore_index, reduction, 0.0, False, "nll_loss")


# -- regression losses -------------------------------------------------------------------------------------
class PointwiseLoss(Function):
    """l = f(d), d = x - y, elementwise:
        l1:         |d|                                   f'(d) = sign d
        smooth_l1:  d^2 / (2 b) if |d| < b else |d| - b/2   f'(d) = d / b or sign d
        huber:      d^2 / 2 if |d| < k else k (|d| - k/2)    f'(d) = d or k sign d
    dl/dx = f'(d),  dl/dy = -f'(d)"""

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, y, kind, param):
        d = x - y
        ctx.kind, ctx.param = kind, param
        ad = np.abs(d)
        ctx.save_for_backward(d)
        if kind == "l1":
            return ad
        small = ad < param
        if kind == "smooth_l1":
            return np.where(small, (0.5 / param) * d * d, ad - 0.5 * param).astype(x.dtype, copy=False)
        return np.where(small, 0.5 * d * d, param * (ad - 0.5 * param)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        kind, p = ctx.kind, ctx.param
        if kind == "l1":
            g = grad * np.sign(d)
        elif kind == "smooth_l1":
            g = grad * np.where(np.abs(d) < p, d / p, np.sign(d)).astype(d.dtype, copy=False)
        else:
            g = grad * np.where(np.abs(d) < p, d, p * np.sign(d)).astype(d.dtype, copy=False)
        return g, (-g if ctx.needs_input_grad[1] else None)


class SquaredError(Function):
    """mse_loss: l = (x - y)^2 elementwise (``reduction`` 'none'), or its sum or mean over the n elements
        dl/dx = 2 (x - y) [/ n],   dl/dy = -dl/dx
    The sum is one pass over x and y (``backend.kernels.softmax_loss.squared_error``), accumulated in
    float64; x and y are saved, not x - y."""

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, y, reduction):
        ctx.save_for_backward(x, y)
        ctx.reduction = reduction
        if reduction == "none":
            d = x - y
            return d * d
        n = x.size if x.shape == y.shape else math.prod(np.broadcast_shapes(x.shape, y.shape))
        total = kern.squared_error(x, y)
        if reduction == "mean":
            total = total / n if n else float("nan")  # an empty mean is NaN, as torch's
        ctx.factor = (2 / n if n else 0.0) if reduction == "mean" else 2.0
        return np.asarray(total, dtype=np.result_type(x, y))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        if ctx.reduction == "none":
            gx = kern.scaled_difference(x, y, 2.0) * grad
        else:
            gx = kern.scaled_difference(x, y, float(grad) * ctx.factor)
        return gx, (-gx if ctx.needs_input_grad[1] else None)


def _pair(input, target, op):
    x, y = binary_operands(input, target)
    if not is_floating(x.data.dtype):
        raise DTypeError(f"{op}: needs floating-point input and target, got {x.dtype}")
    if x.shape != y.shape:
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise ShapeError(f"{op}: input {shape_str(x.shape)} and target {shape_str(y.shape)} do not "
                             "broadcast") from None
        warnings.warn(f"{op}: target size {shape_str(y.shape)} differs from input size {shape_str(x.shape)}; "
                      "they will be broadcast, which is likely not what you want", stacklevel=3)
    return x, y


def _pointwise(input, target, reduction, kind, param, op, weight=None, weighted_mean="sum_w"):
    x, y = _pair(input, target, op)
    if kind == "mse":
        if weight is None:
            return SquaredError.apply(x, y, reduction=reduction)
        loss = SquaredError.apply(x, y, reduction="none")
    else:
        loss = PointwiseLoss.apply(x, y, kind=kind, param=param)
    if weight is None:
        return _reduce(loss, reduction)
    if weight.shape != input.shape:
        raise ShapeError(f"{op}: weight {shape_str(weight.shape)} must have the input's shape {shape_str(input.shape)}")
    loss = loss * weight
    if reduction == "mean" and weighted_mean == "sum_w":  # torch: sum(w l) / sum(w) for mse and l1
        return _r.sum(loss) / _r.sum(weight)
    return _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """(x - y)^2, reduced; with ``weight``, 'mean' is sum(w l) / sum(w) as torch."""
    return _pointwise(input, target, _reduction(reduction, size_average, reduce, "mse_loss"), "mse", None,
                      "mse_loss", weight)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """Mean (or sum, or none) of |input - target| (torch.nn.functional.l1_loss)."""
    return _pointwise(input, target, _reduction(reduction, size_average, reduce, "l1_loss"), "l1", None,
                      "l1_loss", weight)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, with d = input - target (F.smooth_l1_loss)."""
    reduction = _reduction(reduction, size_average, reduce, "smooth_l1_loss")
    if beta < 0:
        raise ConfigError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:  # torch: plain l1
        return _pointwise(input, target, reduction, "l1", None, "smooth_l1_loss")
    return _pointwise(input, target, reduction, "smooth_l1", float(beta), "smooth_l1_loss")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """With ``weight``, 'mean' is the plain mean of w l, as torch."""
    reduction = _reduction(reduction, op="huber_loss")
    if delta <= 0:
        raise ConfigError(f"huber_loss: delta must be > 0, got {delta}")
    return _pointwise(input, target, reduction, "huber", float(delta), "huber_loss", weight, weighted_mean="mean")


# -- binary cross entropy -----------------------------------------------------------------------------------
class BinaryCrossEntropy(Function):
    """l = -w (t log p + (1 - t) log(1 - p)),   each log clamped at -100 (as torch)
    dl/dp = w (p - t) / max(p (1 - p), 1e-12),   dl/dt = w (log(1 - p) - log p) = -w logit(p)

    NOTE: as in torch, dl/dt uses the *unclamped* logs (infinite at p = 0 or 1)."""

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, p, t, weight):
        with np.errstate(divide="ignore"):
            lp = np.maximum(np.log(p), -100)
            l1p = np.maximum(np.log1p(-p), -100)
        loss = -(t * lp + (1 - t) * l1p)
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(p, t, weight)
        return loss

    @staticmethod
    def backward(ctx, grad):
        p, t, w = ctx.saved_tensors
        g = grad if w is None else grad * w
        gp = g * (p - t) / np.maximum(p * (1 - p), 1e-12) if ctx.needs_input_grad[0] else None
        gt = None
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gt = g * (np.log1p(-p) - np.log(p))
        return gp, gt


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """BCE on probabilities in [0, 1] (``weight`` rescales each element; it gets no gradient)."""
    reduction = _reduction(reduction, size_average, reduce, "binary_cross_entropy")
    x, y = binary_operands(input, target)
    if x.shape != y.shape:
        raise ShapeError(f"binary_cross_entropy: target {shape_str(y.shape)} must have the input's shape "
                         f"{shape_str(x.shape)}")
    p = x.data
    if p.size and (p.min() < 0 or p.max() > 1):
        raise DataError(f"binary_cross_entropy: input must hold probabilities in [0, 1], got values in "
                        f"[{p.min()}, {p.max()}]; use binary_cross_entropy_with_logits for logits")
    loss = BinaryCrossEntropy.apply(x, y, weight=_weight_array(weight, p))
    return _reduce(loss, reduction)


class BCEWithLogits(Function):
    """With lw = 1 + (pw - 1) t and sp(z) = log(1 + e^z):
        l = (1 - t) x + lw sp(-x)
        dl/dx = (1 - t) - lw sigmoid(-x),   dl/dt = -x + (pw - 1) sp(-x),   dl/dpw = t sp(-x)"""

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, t, *pw):
        sp = softplus_array(-x)
        pw = pw[0] if pw else None
        lw = 1 if pw is None else 1 + (pw - 1) * t
        ctx.save_for_backward(x, t, pw, sp)
        return (1 - t) * x + lw * sp

    @staticmethod
    def backward(ctx, grad):
        x, t, pw, sp = ctx.saved_tensors
        need = ctx.needs_input_grad
        gx = gt = gpw = None
        if need[0]:
            lw = 1 if pw is None else 1 + (pw - 1) * t
            gx = grad * ((1 - t) - lw * sigmoid_array(-x))
        if need[1]:
            gt = grad * (-x if pw is None else -x + (pw - 1) * sp)
        if pw is not None and need[2]:
            gpw = grad * t * sp
        return (gx, gt) if pw is None else (gx, gt, gpw)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """sigmoid + BCE in one stable node; ``pos_weight`` (broadcast over the last dim) weighs positives."""
    reduction = _reduction(reduction, size_average, reduce, "binary_cross_entropy_with_logits")
    x, y = binary_operands(input, target)
    if x.shape != y.shape:
        raise ShapeError(f"binary_cross_entropy_with_logits: target {shape_str(y.shape)} must have the input's "
                         f"shape {shape_str(x.shape)}")
    extra = ()
    if pos_weight is not None:
        pw = pos_weight if pos_weight.dtype == x.dtype else pos_weight.to(x.dtype)
        try:
            np.broadcast_shapes(pw.shape, x.shape)
        except ValueError:
            raise ShapeError(f"binary_cross_entropy_with_logits: pos_weight {shape_str(pw.shape)} does not "
                             f"broadcast to the input {shape_str(x.shape)}") from None
        extra = (pw,)
    loss = BCEWithLogits.apply(x, y, *extra)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# -- KL divergence -----------------------------------------------------------------------------------------------
class KLDiv(Function):
    """input x = log q;  target t = p (or log p with log_target):
        l = p (log p - x)   (0 where p = 0)        dl/dx = -p,   dl/dp = log p + 1 - x
        log_target: l = e^t (t - x)                dl/dx = -e^t, dl/dt = e^t (t - x + 1)
    NOTE: at p = 0 the target gradient is taken as -x (torch gives NaN there)."""

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, t, log_target):
        ctx.log_target = log_target
        if log_target:
            et = np.exp(t)
            ctx.save_for_backward(x, t, et)
            return et * (t - x)
        pos = t > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            logt = np.where(pos, np.log(np.where(pos, t, 1)), 0).astype(t.dtype, copy=False)
        ctx.save_for_backward(x, t, logt)
        return t * (logt - x)

    @staticmethod
    def backward(ctx, grad):
        x, t, aux = ctx.saved_tensors
        if ctx.log_target:
            gx = -grad * aux
            gt = grad * aux * (t - x + 1) if ctx.needs_input_grad[1] else None
            return gx, gt
        gt = None
        if ctx.needs_input_grad[1]:
            gt = grad * np.where(t > 0, aux + 1 - x, -x).astype(x.dtype, copy=False)
        return -grad * t, gt


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || q) with ``input`` = log q. reduction 'batchmean' divides the sum by the batch
    size (the mathematically right one); 'mean' divides by the element count, as torch does."""
    reduction = _reduction(reduction, size_average, reduce, "kl_div", allowed=_REDUCTIONS + ("batchmean",))
    x, y = _pair(input, target, "kl_div")
    loss = KLDiv.apply(x, y, log_target=log_target)
    if reduction == "batchmean":
        total = _r.sum(loss)
        return total / input.shape[0] if input.data.ndim else total
    return _reduce(loss, reduction)


# -- similarity and normalisation ---------------------------------------------------------------------------------
class _ClampMinPassGrad(Function):
    """y = max(x, lo), but dy/dx = 1 everywhere: torch clamps the norms in cosine_similarity in
    place under no_grad, so the gradient flows as if unclamped."""

    @staticmethod
    def forward(ctx, x, lo):
        return np.maximum(x, lo).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return grad


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1/|x1| * x2/|x2|) along ``dim``, each norm clamped below at ``eps`` (as torch)."""
    a, b = binary_operands(x1, x2)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"cosine_similarity: x1 {shape_str(a.shape)} and x2 {shape_str(b.shape)} do not "
                         "broadcast") from None
    (axis,) = normalize_dims(dim, len(shape), "cosine_similarity")
    if a.shape != shape or b.shape != shape:
        a, b = broadcast_tensors(a, b)
    na_ = _ClampMinPassGrad.apply(_r.norm(a, 2, axis, keepdim=True), lo=eps)
    nb_ = _ClampMinPassGrad.apply(_r.norm(b, 2, axis, keepdim=True), lo=eps)
    return _r.sum((a / na_) * (b / nb_), axis)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    if out is not None:
        raise ConfigError("normalize: out= is not supported; use the returned tensor")
    (axis,) = normalize_dims(dim, input.data.ndim, "normalize")
    return input / clamp(_r.norm(input, p, axis, keepdim=True), min=eps)

