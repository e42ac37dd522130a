"""Cumulative ops beside reduce.cumsum: cumprod, logcumsumexp, and the
compositions diff, trapezoid and cumulative_trapezoid."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import ShapeError
from neural_arch.ops import elementwise as ew
from neural_arch.ops import reduce
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.index import getitem
from neural_arch.ops.reduce import _rev_cumsum
from neural_arch.ops.shape import cat

__all__ = ["cumprod", "cumulative_trapezoid", "diff", "logcumsumexp", "trapezoid", "trapz"]


class CumProd(Function):
    """y_i = prod_{j <= i} x_j
    dL/dx_j = sum_{i >= j} g_i prod_{k <= i, k != j} x_k
            = (reversed cumsum of g y)_j / x_j          when no x is zero;
    with zeros the products are formed directly (the exclusive products before j times
    the running products after it), so a zero's own gradient is exact, as in torch."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axis):
        y = np.cumprod(x, axis=axis)
        ctx.save_for_backward(x, y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        a = ctx.axis
        if not (x == 0).any():
            return _rev_cumsum(grad * y, a) / x
        xm, gm = np.moveaxis(x, a, 0), np.moveaxis(grad, a, 0)
        n = xm.shape[0]
        before = np.ones_like(xm)  # prod_{k < j} x_k
        if n > 1:
            np.cumprod(xm[:-1], axis=0, out=before[1:])
        out = np.empty_like(gm)
        for j in range(n):  # sum_{i >= j} g_i * prod_{k < j} x_k * prod_{j < k <= i} x_k
            after = np.cumprod(np.concatenate([np.ones_like(xm[:1]), xm[j + 1:]]), axis=0)
            out[j] = before[j] * (gm[j:] * after).sum(axis=0)
        return np.moveaxis(out, 0, a)


def cumprod(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running product along ``dim``."""
    if dtype is not None:
        x = x.to(dtype)
    if x.data.ndim == 0:
        normalize_dims(dim, 0, "cumprod")
        return x.clone()
    (axis,) = normalize_dims(dim, x.data.ndim, "cumprod")
    return CumProd.apply(x, axis=axis)


class LogCumSumExp(Function):
    """y_i = log sum_{j <= i} e^{x_j}
    dL/dx_j = sum_{i >= j} g_i e^{x_j - y_i}, computed as for torch in log space, the positive
    and negative parts of g apart: e^{x_j + logrevcumsumexp(log|g_i| - y_i)}, so nothing overflows."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, axis):
        y = np.logaddexp.accumulate(x, axis=axis)
        ctx.save_for_backward(x, y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        a = ctx.axis

        def part(g):
            with np.errstate(divide="ignore"):
                lg = np.log(g) - y
            acc = np.flip(np.logaddexp.accumulate(np.flip(lg, a), axis=a), a)
            return np.exp(x + acc)

        with np.errstate(invalid="ignore"):
            return (part(np.maximum(grad, 0)) - part(np.maximum(-grad, 0))).astype(grad.dtype, copy=False)


def logcumsumexp(x: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along ``dim``, without overflow."""
    if x.data.ndim == 0:
        normalize_dims(dim, 0, "logcumsumexp")
        return x.clone()
    (axis,) = normalize_dims(dim, x.data.ndim, "logcumsumexp")
    return LogCumSumExp.apply(x if is_floating(x.data.dtype) else x.float(), axis=axis)


def diff(x: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """The n-th forward difference along ``dim`` (``prepend``/``append`` joined first)."""
    if x.data.ndim == 0:
        raise ShapeError("diff: expects a tensor with at least 1 dim")
    (axis,) = normalize_dims(dim, x.data.ndim, "diff")
    parts = [t for t in (prepend, x, append) if t is not None]
    out = cat(parts, axis) if len(parts) > 1 else x
    lead = (slice(None),) * axis
    for _ in range(n):
        if out.data.dtype == np.bool_:
            out = Tensor._wrap(out.data[lead + (slice(1, None),)] ^ out.data[lead + (slice(None, -1),)])
        else:
            out = ew.sub(getitem(out, lead + (slice(1, None),)), getitem(out, lead + (slice(None, -1),)))
    return out


def _trapezoid_parts(y: Tensor, x, dx, dim):
    (axis,) = normalize_dims(dim, y.data.ndim, "trapezoid")
    lead = (slice(None),) * axis
    mid = ew.mul(ew.add(getitem(y, lead + (slice(1, None),)), getitem(y, lead + (slice(None, -1),))), 0.5)
    if x is not None:
        xs = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
        width = diff(xs, dim=-1 if xs.data.ndim == 1 else dim)
        if xs.data.ndim == 1 and y.data.ndim > 1:  # a 1-d x applies along dim
            width = width.reshape([-1 if d == axis else 1 for d in range(y.data.ndim)])
        return ew.mul(mid, width), axis
    return ew.mul(mid, 1 if dx is None else dx), axis


def trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along ``dim``, with sample points ``x`` or spacing ``dx`` (1 by default)."""
    parts, axis = _trapezoid_parts(y, x, dx, dim)
    return reduce.sum(parts, axis)


def cumulative_trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoidal rule along ``dim``."""
    parts, axis = _trapezoid_parts(y, x, dx, dim)
    return reduce.cumsum(parts, axis)


trapz = trapezoid
