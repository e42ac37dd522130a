"""Reductions: sum, mean, prod, var/std, max/min, logsumexp, cumsum, norm.

``dim`` may be None (all dims), an int or a tuple; ``keepdim`` as in torch.
Backward re-inserts the reduced axes (size 1) and lets broadcasting spread
the gradient over them.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from neural_arch.autograd.autocast import FP32
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.kernels import reduce as kern
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops import elementwise as ew
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops._operands import as_floating

__all__ = [
    "all", "amax", "amin", "any", "argmax", "argmin", "count_nonzero", "cumsum", "logsumexp", "max", "mean",
    "min", "norm", "prod", "std", "std_mean", "sum", "var", "var_mean",
]


def _expand_back(grad, shape, axes, keepdim):
    """Reshape a reduced gradient so that it broadcasts against the input ``shape``."""
    if keepdim or not axes:
        return grad
    return grad.reshape([1 if i in axes else s for i, s in enumerate(shape)])


class Sum(Function):
    """y = sum_i x_i over axes         dy/dx_i = 1"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype):
        ctx.shape, ctx.axes, ctx.keepdim, ctx.in_dtype = x.shape, axes, keepdim, x.dtype
        if dtype is None:
            return kern.sum_axes(x, axes, keepdim)
        return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        g = _expand_back(grad, ctx.shape, ctx.axes, ctx.keepdim)
        return np.broadcast_to(g.astype(ctx.in_dtype, copy=False), ctx.shape)


class Mean(Function):
    """y = (1/n) sum_i x_i             dy/dx_i = 1/n"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return kern.mean_axes(x, axes, keepdim)

    @staticmethod
    def backward(ctx, grad):
        g = _expand_back(grad, ctx.shape, ctx.axes, ctx.keepdim) / ctx.n
        return np.broadcast_to(g.astype(grad.dtype, copy=False), ctx.shape)


class Prod(Function):
    """y = prod_i x_i       dy/dx_i = prod_{j != i} x_j   (exact with zeros: no division)"""

    half = "float32"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, axis, keepdim):
        ctx.save_for_backward(x)
        ctx.axis, ctx.keepdim = axis, keepdim
        return x.prod(axis=axis, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        axis = ctx.axis
        if axis is None:
            flat = x.reshape(-1)
            return (grad.reshape(()) * _prod_others(flat, 0)).reshape(x.shape)
        g = grad if ctx.keepdim else np.expand_dims(grad, axis)
        return g * _prod_others(x, axis)


def _prod_others(x, axis):
    """prod of all elements but x_i along ``axis``: the exclusive cumulative
    products from the left times those from the right (no division, so zeros are exact)."""
    if x.shape[axis] == 0:
        return np.zeros_like(x)
    m = np.moveaxis(x, axis, 0)
    left = np.ones_like(m)
    right = np.ones_like(m)
    np.cumprod(m[:-1], axis=0, out=left[1:])
    np.cumprod(m[:0:-1], axis=0, out=right[-2::-1])
    return np.moveaxis(left * right, 0, axis)


class Var(Function):
    """y = sum_i (x_i - mean)^2 / max(n - c, 0)     dy/dx_i = 2 (x_i - mean) / (n - c)

    ``c`` is the correction. With ``c >= n`` the forward divides by 0 (inf,
    or nan for a constant input), and backward follows torch exactly: over
    all elements (``dim=None``) it is ``inf`` (``nan`` where x_i = mean);
    over given dims it is the plain formula, ``2 (x_i - mean) / (n - c)``
    (a signed inf for c = n, finite and negative for c > n).
    """

    half = "float32"

    @staticmethod
    def forward(ctx, x, axes, correction, keepdim, all_dims):
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdim, ctx.dof, ctx.all_dims = axes, keepdim, n - correction, all_dims
        with np.errstate(divide="ignore", invalid="ignore"):
            sq = np.square(centered).sum(axis=axes, keepdims=keepdim)
            return (sq / builtins.max(n - correction, 0)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        g = _expand_back(grad, centered.shape, ctx.axes, ctx.keepdim)
        if ctx.dof <= 0 and ctx.all_dims:
            return g * np.where(centered == 0, np.nan, np.inf).astype(grad.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.divide(2.0, ctx.dof) if ctx.dof else np.inf
            return (g * centered * scale).astype(grad.dtype, copy=False)


class AMax(Function):
    """y = max_i x_i        dy/dx_i = [x_i = y] / (number of ties)   (as torch.amax)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axes, keepdim, use_min):
        y = (x.min if use_min else x.max)(axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        mask = x == y
        count = mask.sum(axis=ctx.axes, keepdims=True)
        g = _expand_back(grad, x.shape, ctx.axes, ctx.keepdim)
        return (g * mask / count).astype(grad.dtype, copy=False)


class MaxDim(Function):
    """values, indices = max(x, dim)     d values / dx = 1 at the chosen index, else 0"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axis, keepdim, use_min):
        idx = (np.argmin if use_min else np.argmax)(x, axis=axis)
        idx_k = np.expand_dims(idx, axis)
        values = np.take_along_axis(x, idx_k, axis=axis)
        ctx.shape, ctx.axis, ctx.keepdim, ctx.idx = x.shape, axis, keepdim, idx_k
        ctx.indices = idx_k if keepdim else idx
        return values if keepdim else np.squeeze(values, axis)

    @staticmethod
    def backward(ctx, grad):
        g = grad if ctx.keepdim else np.expand_dims(grad, ctx.axis)
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        np.put_along_axis(out, ctx.idx, g, axis=ctx.axis)
        return out


class LogSumExp(Function):
    """y = log sum_i e^{x_i} = m + log sum_i e^{x_i - m}     dy/dx_i = softmax(x)_i"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        m = x.max(axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all -inf (or inf) along a row: avoid inf - inf
        e = np.exp(x - m)
        s = e.sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            y = np.log(s) + m
        ctx.save_for_backward(e, s)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y if keepdim else y.reshape([d for i, d in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, grad):
        e, s = ctx.saved_tensors
        g = _expand_back(grad, e.shape, ctx.axes, ctx.keepdim)
        with np.errstate(invalid="ignore", divide="ignore"):
            return g * (e / s)


class CumSum(Function):
    """y_i = sum_{j <= i} x_j        dL/dx_j = sum_{i >= j} dL/dy_i  (a reversed cumsum)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis, dtype=x.dtype if is_floating(x.dtype) else None)

    @staticmethod
    def backward(ctx, grad):
        return _rev_cumsum(grad, ctx.axis)


def _rev_cumsum(a, axis):
    """sum_{i >= j} a_i along ``axis``: a cumsum from the end."""
    return np.flip(np.cumsum(np.flip(a, axis), axis=axis), axis)


class Norm2(Function):
    """y = sqrt(sum_i x_i^2)      dy/dx_i = x_i / y   (0 where y = 0, as in torch)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        y = np.sqrt(np.square(x).sum(axis=axes, keepdims=True))
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y if keepdim else y.reshape([d for i, d in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        g = _expand_back(grad, x.shape, ctx.axes, ctx.keepdim)
        safe = np.where(y == 0, 1, y)
        return np.where(y == 0, 0, g * x / safe).astype(grad.dtype, copy=False)


# -- the functional API ------------------------------------------------------------------------------
def sum(x, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (all dims by default). Integer and bool inputs sum into int64, as in torch."""
    if dtype is None and x.data.dtype.kind in "biu":
        dtype = np.int64
    axes = normalize_dims(dim, x.data.ndim, "sum")
    return Sum.apply(x, axes=axes, keepdim=keepdim, dtype=dtype)


def mean(x, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The mean over ``dim`` (or all elements) (torch.mean)."""
    if dtype is not None:
        x = x.to(dtype)
    if not is_floating(x.data.dtype):
        raise DTypeError(f"mean: needs a floating-point input, got {x.dtype}; convert with .float() first")
    return Mean.apply(x, axes=normalize_dims(dim, x.data.ndim, "mean"), keepdim=keepdim)


def prod(x, dim=None, keepdim: bool = False) -> Tensor:
    """The product over ``dim`` (or all elements); its gradient is exact with zeros (torch.prod)."""
    if dim is None or x.data.ndim == 0:
        normalize_dims(dim, x.data.ndim, "prod")  # still reject a bad dim on a 0-d tensor
        return Prod.apply(x, axis=None, keepdim=False)
    (axis,) = normalize_dims(dim, x.data.ndim, "prod")
    return Prod.apply(x, axis=axis, keepdim=keepdim)


def var(x, dim=None, *, correction=1, keepdim: bool = False, unbiased=None) -> Tensor:
    """Variance with Bessel's ``correction`` (1 by default, as torch); ``unbiased=False`` means 0."""
    if unbiased is not None:
        correction = 1 if unbiased else 0
    axes = normalize_dims(dim, x.data.ndim, "var")
    return Var.apply(as_floating(x), axes=axes, correction=correction, keepdim=keepdim,
                     all_dims=dim is None or x.data.ndim == 0)


def std(x, dim=None, *, correction=1, keepdim: bool = False, unbiased=None) -> Tensor:
    """The standard deviation over ``dim`` with Bessel's ``correction`` (torch.std)."""
    return ew.sqrt(var(x, dim, correction=correction, keepdim=keepdim, unbiased=unbiased))


def var_mean(x, dim=None, *, correction=1, keepdim=False):
    """``(var, mean)`` over ``dim`` (torch.var_mean)."""
    return var(x, dim, correction=correction, keepdim=keepdim), mean(as_floating(x), dim, keepdim)


def std_mean(x, dim=None, *, correction=1, keepdim=False):
    """``(std, mean)`` over ``dim`` (torch.std_mean)."""
    return std(x, dim, correction=correction, keepdim=keepdim), mean(as_floating(x), dim, keepdim)


def _nonempty_axes(x, dim, op):
    """The axes of ``dim``, none of them empty (a max or min over nothing has no value)."""
    axes = normalize_dims(dim, x.data.ndim, op)
    if builtins.any(x.data.shape[a] == 0 for a in axes) or (not axes and x.data.size == 0):
        raise ShapeError(f"{op}: cannot reduce over an empty dimension (input shape {shape_str(x.shape)})")
    return axes


def amax(x, dim=None, keepdim: bool = False) -> Tensor:
    """The maximum along ``dim``; ties share the gradient equally (torch.amax)."""
    return AMax.apply(x, axes=_nonempty_axes(x, dim, "amax"), keepdim=keepdim, use_min=False)


def amin(x, dim=None, keepdim: bool = False) -> Tensor:
    """The minimum along ``dim``; ties share the gradient equally (torch.amin)."""
    return AMax.apply(x, axes=_nonempty_axes(x, dim, "amin"), keepdim=keepdim, use_min=True)


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _max_min(x, dim, keepdim, use_min, op):
    if dim is None:
        return amin(x) if use_min else amax(x)
    if not isinstance(dim, int):  # torch.max(a, b): elementwise
        return ew.minimum(x, dim) if use_min else ew.maximum(x, dim)
    if x.data.ndim == 0:  # torch: dim 0 / -1 of a 0-d tensor is the element itself
        normalize_dims(dim, 0, op)
        return MaxResult(x.clone(), Tensor._wrap(np.zeros((), dtype=np.int64)))
    (axis,) = _nonempty_axes(x, dim, op)
    values = MaxDim.apply(x, axis=axis, keepdim=keepdim, use_min=use_min)
    node = values._ctx
    idx = node.indices if node is not None else _indices(x.data, axis, keepdim, use_min)
    return MaxResult(values, Tensor._wrap(idx.astype(np.int64, copy=False)))


def _indices(a, axis, keepdim, use_min):
    idx = (np.argmin if use_min else np.argmax)(a, axis=axis)
    return np.expand_dims(idx, axis) if keepdim else idx


def max(x, dim=None, keepdim: bool = False):  # noqa: A001
    """``max(x)`` -> the largest value; ``max(x, dim)`` -> (values, indices); ``max(x, other)`` -> elementwise."""
    return _max_min(x, dim, keepdim, False, "max")


def min(x, dim=None, keepdim: bool = False):  # noqa: A001
    """The minimum: of all elements, or ``(values, indices)`` along ``dim`` (torch.min)."""
    return _max_min(x, dim, keepdim, True, "min")


def argmax(x, dim=None, keepdim: bool = False) -> Tensor:
    """The index of the maximum, over the flattened tensor or along ``dim``; int64 (torch.argmax)."""
    return _arg_extreme(x, dim, keepdim, False, "argmax")


def argmin(x, dim=None, keepdim: bool = False) -> Tensor:
    """The index of the minimum, over the flattened tensor or along ``dim``; int64 (torch.argmin)."""
    return _arg_extreme(x, dim, keepdim, True, "argmin")


def _arg_extreme(x, dim, keepdim: bool, use_min: bool, op: str) -> Tensor:
    if dim is None:
        return Tensor._wrap(np.asarray((np.argmin if use_min else np.argmax)(x.data), dtype=np.int64))
    if x.data.ndim == 0:
        normalize_dims(dim, 0, op)
        return Tensor._wrap(np.zeros((), dtype=np.int64))
    (axis,) = normalize_dims(dim, x.data.ndim, op)
    return Tensor._wrap(_indices(x.data, axis, keepdim, use_min).astype(np.int64, copy=False))


def logsumexp(x, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) along ``dim``, computed without overflow (torch.logsumexp)."""
    return LogSumExp.apply(as_floating(x), axes=normalize_dims(dim, x.data.ndim, "logsumexp"), keepdim=keepdim)


def cumsum(x, dim: int) -> Tensor:
    """The running sum along ``dim`` (torch.cumsum)."""
    if x.data.ndim == 0:
        normalize_dims(dim, 0, "cumsum")
        return x.clone()
    (axis,) = normalize_dims(dim, x.data.ndim, "cumsum")
    return CumSum.apply(x, axis=axis)


def norm(x, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """The p-norm over ``dim`` (all elements by default): 'fro', inf, -inf, 0, and any p > 0."""
    x = as_floating(x)
    if p == "fro":
        p = 2
    if p == float("inf"):
        return amax(ew.abs(x), dim, keepdim)
    if p == float("-inf"):
        return amin(ew.abs(x), dim, keepdim)
    if p == 0:
        return sum(Tensor._wrap(x.data != 0), dim, keepdim).to(x.dtype)
    if p == 2:
        return Norm2.apply(x, axes=normalize_dims(dim, x.data.ndim, "norm"), keepdim=keepdim)
    if p == 1:
        return sum(ew.abs(x), dim, keepdim)
    return ew.pow(sum(ew.pow(ew.abs(x), p), dim, keepdim), 1.0 / p)


def all(x, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where every element along ``dim`` (or all) is nonzero; a bool tensor (torch.all)."""
    axes = normalize_dims(dim, x.data.ndim, "all")
    return Tensor._wrap(np.asarray(np.all(x.data, axis=axes, keepdims=keepdim)))


def any(x, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where some element along ``dim`` (or any) is nonzero; a bool tensor (torch.any)."""
    axes = normalize_dims(dim, x.data.ndim, "any")
    return Tensor._wrap(np.asarray(np.any(x.data, axis=axes, keepdims=keepdim)))


def count_nonzero(x, dim=None) -> Tensor:
    """The number of nonzero elements along ``dim`` (or all); int64 (torch.count_nonzero)."""
    axes = normalize_dims(dim, x.data.ndim, "count_nonzero")
    return Tensor._wrap(np.asarray(np.count_nonzero(x.data, axis=axes), dtype=np.int64))
