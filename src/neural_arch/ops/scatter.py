"""Scatter and selection ops beside index.py: scatter, scatter_reduce, index_add,
index_copy, index_fill, masked_scatter, take, take_along_dim, masked_select,
nonzero, argwhere, index_put, put, select_scatter, slice_scatter.

A scatter that *replaces* (scatter, index_copy, index_fill) passes no gradient
to the overwritten positions of the input; the source gets the gradient of the
positions it was written to, as in torch.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops import elementwise as ew
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.index import Gather, _check_index, _full_index, getitem, scatter_add
from neural_arch.ops.shape import expand, reshape

__all__ = [
    "argwhere", "index_add", "index_copy", "index_fill", "index_put", "masked_scatter", "masked_select", "nonzero",
    "put", "scatter", "scatter_reduce", "select_scatter", "slice_scatter", "take", "take_along_dim",
]


class Scatter(Function):
    """y = x; y[index[i][j]][j] = src[i][j] (along axis)
    dL/dx = dL/dy with the written positions zeroed,   dL/dsrc = dL/dy gathered at index"""

    @staticmethod
    def forward(ctx, x, src, index, axis):
        ctx.axis, ctx.index, ctx.src_shape = axis, index, src.shape
        out = x.copy()
        region = tuple(slice(0, s) for s in index.shape)
        out[_full_index(index, axis)] = src[region]
        return out

    @staticmethod
    def backward(ctx, grad):
        where = _full_index(ctx.index, ctx.axis)
        gx = None
        if ctx.needs_input_grad[0]:
            gx = grad.copy()
            gx[where] = 0
        gsrc = None
        if ctx.needs_input_grad[1]:
            gsrc = np.zeros(ctx.src_shape, dtype=grad.dtype)
            gsrc[tuple(slice(0, s) for s in ctx.index.shape)] = grad[where]
        return gx, gsrc


def _src(x: Tensor, src, value, index, op):
    if src is None and value is None:
        raise ShapeError(f"{op}: give src (a tensor) or value (a number)")
    if src is None or not isinstance(src, Tensor):
        v = value if src is None else src
        return Tensor._wrap(np.full(index.shape, v, dtype=x.data.dtype))
    if src.data.dtype != x.data.dtype:
        raise DTypeError(f"{op}: src dtype {src.dtype} differs from self dtype {x.dtype}")
    return src


def scatter(x: Tensor, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """Write ``src`` (or ``value``) into a copy of x at ``index`` along ``dim``;
    ``reduce='add'``/``'multiply'`` combine instead of replacing (as torch's legacy argument)."""
    (axis,) = normalize_dims(dim, x.data.ndim, "scatter")
    idx = _check_index(index, "scatter", x.data.shape[axis])
    s = _src(x, src, value, idx, "scatter")
    if reduce == "add":
        return scatter_add(x, dim, idx, s)
    if reduce == "multiply":
        return scatter_reduce(x, dim, idx, s, "prod")
    if reduce is not None:
        raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
    if idx.ndim != x.data.ndim or any(i > t for i, t in zip(idx.shape, s.data.shape)):
        raise ShapeError(f"scatter: index {shape_str(idx.shape)} must fit inside src {shape_str(s.shape)}")
    return Scatter.apply(x, s, index=idx, axis=axis)


class ScatterReduce(Function):
    """y = x (or the reduction's identity where ``include_self`` is False) combined with src at index:
    'sum', 'prod', 'mean', 'amax', 'amin'.
    dL/dx and dL/dsrc: sum: g;  mean: g / count;  prod: g y / value (exact products where a value is 0);
    amax/amin: g shared evenly between the values equal to the result."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, src, index, axis, reduce, include_self):
        where = _full_index(index, axis)
        region = tuple(slice(0, s) for s in index.shape)
        s = src[region]
        out = x.copy()
        touched = np.zeros(x.shape, dtype=bool)
        touched[where] = True
        ufunc = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}[reduce]
        if not include_self:
            identity = {"sum": 0, "mean": 0, "prod": 1, "amax": -np.inf, "amin": np.inf}[reduce]
            if x.dtype.kind != "f" and reduce in ("amax", "amin"):
                info = np.iinfo(x.dtype)
                identity = info.min if reduce == "amax" else info.max
            out[touched] = identity
        ufunc.at(out, where, s)
        count = None
        if reduce == "mean":
            count = np.zeros(x.shape, dtype=x.dtype)
            np.add.at(count, where, 1)
            count = count + (1 if include_self else 0)
            safe = np.where(count == 0, 1, count)
            out = np.where(touched, out / safe if x.dtype.kind == "f" else out // safe, out).astype(x.dtype)
        ctx.save_for_backward(x, s, out, touched, count)
        ctx.where, ctx.region, ctx.src_shape = where, region, src.shape
        ctx.reduce, ctx.include_self = reduce, include_self
        return out

    @staticmethod
    def backward(ctx, grad):
        x, s, out, touched, count = ctx.saved_tensors
        where, r = ctx.where, ctx.reduce
        keep_self = ctx.include_self
        if r == "sum":
            gx, gs = grad.copy(), grad[where]
        elif r == "mean":
            scaled = grad / np.where(count == 0, 1, count)
            gx = np.where(touched, scaled, grad)
            gs = scaled[where]
        elif r == "prod":
            gx, gs = _prod_grads(x, s, out, grad, where, touched, keep_self)
        else:  # amax / amin: ties share the gradient
            hits = np.zeros(out.shape, dtype=grad.dtype)
            np.add.at(hits, where, (s == out[where]).astype(grad.dtype))
            self_hit = (x == out) & touched & keep_self
            hits = hits + self_hit
            share = grad / np.where(hits == 0, 1, hits)
            gx = np.where(touched, np.where(self_hit, share, 0), grad)
            gs = np.where(s == out[where], share[where], 0)
        if not keep_self:
            gx = np.where(touched, 0, gx)
        gsrc = np.zeros(ctx.src_shape, dtype=grad.dtype)
        gsrc[ctx.region] = gs
        return gx.astype(grad.dtype, copy=False), gsrc


def _prod_grads(x, s, out, grad, where, touched, keep_self):
    """d out / d v = product of the other factors; without division when a factor is zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        gx = np.where(touched, grad * out / x, grad)
        gs = grad[where] * out[where] / s
    if (s == 0).any() or (x[touched] == 0).any():  # recompute the products of the others directly
        flat_pos = np.ravel_multi_index(tuple(np.broadcast_arrays(*where)), out.shape).reshape(-1)
        vals = s.reshape(-1)
        gs = gs.reshape(-1).copy()
        for k in range(vals.size):
            others = vals[(flat_pos == flat_pos[k]) & (np.arange(vals.size) != k)]
            base = x.reshape(-1)[flat_pos[k]] if keep_self else 1
            gs[k] = grad.reshape(-1)[flat_pos[k]] * np.prod(others) * base
        gs = gs.reshape(s.shape)
        gx_flat = gx.reshape(-1).copy()
        for p in np.unique(flat_pos):
            gx_flat[p] = grad.reshape(-1)[p] * np.prod(vals[flat_pos == p])
        gx = gx_flat.reshape(out.shape)
    return gx, gs


def scatter_reduce(x: Tensor, dim: int, index, src: Tensor, reduce: str, *, include_self: bool = True) -> Tensor:
    """Combine ``src`` into a copy of x at ``index`` along ``dim`` with 'sum', 'prod', 'mean', 'amax' or 'amin'."""
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise ValueError(f"scatter_reduce: reduce must be sum, prod, mean, amax or amin, got {reduce!r}")
    (axis,) = normalize_dims(dim, x.data.ndim, "scatter_reduce")
    idx = _check_index(index, "scatter_reduce", x.data.shape[axis])
    if src.data.dtype != x.data.dtype:
        raise DTypeError(f"scatter_reduce: src dtype {src.dtype} differs from self dtype {x.dtype}")
    if idx.ndim != x.data.ndim or any(i > t for i, t in zip(idx.shape, src.data.shape)):
        raise ShapeError(f"scatter_reduce: index {shape_str(idx.shape)} must fit inside src {shape_str(src.shape)}")
    return ScatterReduce.apply(x, src, index=idx, axis=axis, reduce=reduce, include_self=include_self)


def _index_along(x: Tensor, dim: int, index, source_shape, op):
    (axis,) = normalize_dims(dim, x.data.ndim, op)
    idx = _check_index(index, op, x.data.shape[axis]).reshape(-1)
    full = np.broadcast_to(idx.reshape([-1 if d == axis else 1 for d in range(x.data.ndim)]), source_shape)
    return axis, np.ascontiguousarray(full)


def index_add(x: Tensor, dim: int, index, source: Tensor, *, alpha=1) -> Tensor:
    """x with alpha * source added at ``index`` along ``dim`` (repeated indices accumulate)."""
    axis, full = _index_along(x, dim, index, source.data.shape, "index_add")
    return scatter_add(x, axis, full, ew.mul(source, alpha) if alpha != 1 else source)


def index_copy(x: Tensor, dim: int, index, source: Tensor) -> Tensor:
    """x with the slices of ``source`` written at ``index`` along ``dim``."""
    axis, full = _index_along(x, dim, index, source.data.shape, "index_copy")
    return scatter(x, axis, full, source)


def index_fill(x: Tensor, dim: int, index, value) -> Tensor:
    """x with the slices at ``index`` along ``dim`` set to ``value``."""
    (axis,) = normalize_dims(dim, x.data.ndim, "index_fill")
    shape = list(x.data.shape)
    shape[axis] = np.asarray(index.data if isinstance(index, Tensor) else index).size
    axis, full = _index_along(x, dim, index, tuple(shape), "index_fill")
    return scatter(x, axis, full, value=float(value) if not isinstance(value, Tensor) else value.item())


def masked_scatter(x: Tensor, mask, source: Tensor) -> Tensor:
    """x with the first elements of ``source`` (in order) written where ``mask`` is True."""
    m = np.broadcast_to(mask.data if isinstance(mask, Tensor) else np.asarray(mask), x.data.shape)
    pos = np.flatnonzero(m)
    flat = reshape(x, (-1,))
    src = reshape(source, (-1,))
    if src.data.size < pos.size:
        raise ShapeError(f"masked_scatter: the mask selects {pos.size} elements but source has {src.data.size}")
    take = getitem(src, np.arange(pos.size))
    return reshape(scatter(flat, 0, pos, take), x.data.shape)


def take(x: Tensor, index) -> Tensor:
    """The elements of the flattened x at ``index`` (the result has index's shape)."""
    idx = _check_index(index, "take", x.data.size)
    return getitem(reshape(x, (-1,)), idx)


def take_along_dim(x: Tensor, indices, dim=None) -> Tensor:
    """Values of x at ``indices`` along ``dim`` (flattened when dim is None); shapes broadcast."""
    idx = _check_index(indices, "take_along_dim")
    if dim is None:
        return take(x, idx.reshape(-1))
    (axis,) = normalize_dims(dim, x.data.ndim, "take_along_dim")
    shape = list(np.broadcast_shapes(tuple(s if i != axis else 1 for i, s in enumerate(x.data.shape)),
                                     tuple(s if i != axis else 1 for i, s in enumerate(idx.shape))))
    xs, ishape = list(shape), list(shape)
    xs[axis], ishape[axis] = x.data.shape[axis], idx.shape[axis]
    xb = expand(x, tuple(xs)) if tuple(xs) != x.data.shape else x
    ib = np.ascontiguousarray(np.broadcast_to(idx, ishape)) % max(x.data.shape[axis], 1)
    return Gather.apply(xb, index=ib, axis=axis)


def masked_select(x: Tensor, mask) -> Tensor:
    """The elements of x where ``mask`` (broadcast) is True, as a 1-d tensor."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_select: mask must be bool, got {m.dtype}")
    shape = np.broadcast_shapes(m.shape, x.data.shape)
    xb = expand(x, shape) if shape != x.data.shape else x
    return getitem(xb, np.broadcast_to(m, shape))


def nonzero(x: Tensor, *, as_tuple: bool = False):
    """Indices of the non-zero elements: an (N, ndim) tensor, or a tuple of 1-d tensors with ``as_tuple``."""
    if x.data.ndim == 0:  # one "position" with no coordinates
        hit = int(bool(x.data))
        if as_tuple:
            return (Tensor._wrap(np.zeros(hit, dtype=np.int64)),)
        return Tensor._wrap(np.zeros((hit, 0), dtype=np.int64))
    idx = np.nonzero(x.data)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in idx)
    return Tensor._wrap(np.stack(idx, axis=1).astype(np.int64).reshape(-1, x.data.ndim))


def argwhere(x: Tensor) -> Tensor:
    """The indices of the non-zero elements, one row each (as ``nonzero``)."""
    return nonzero(x)


class PutRegion(Function):
    """y = x with y[idx] = src (``accumulate``: y[idx] += src, repeated positions adding up)
    dL/dx = dL/dy, with zeros at idx unless accumulating;   dL/dsrc = dL/dy[idx]"""

    @staticmethod
    def forward(ctx, x, src, idx, accumulate):
        out = x.copy()
        if accumulate:
            np.add.at(out, idx, src)
        else:
            out[idx] = src
        ctx.idx, ctx.accumulate = idx, accumulate
        return out

    @staticmethod
    def backward(ctx, grad):
        gx = None
        if ctx.needs_input_grad[0]:
            gx = grad
            if not ctx.accumulate:
                gx = grad.copy()
                gx[ctx.idx] = 0
        return gx, grad[ctx.idx]


def _put(x: Tensor, idx, values, accumulate: bool, op: str) -> Tensor:
    v = values if isinstance(values, Tensor) else Tensor(np.asarray(values, dtype=x.data.dtype))
    if v.data.dtype != x.data.dtype:
        v = v.to(x.dtype)
    try:
        target = np.broadcast_shapes(x.data[idx].shape, v.data.shape)
    except (IndexError, ValueError) as exc:
        raise ShapeError(f"{op}: values {shape_str(v.shape)} do not fit the indexed positions ({exc})") from None
    if target != x.data[idx].shape:
        raise ShapeError(f"{op}: values {shape_str(v.shape)} do not broadcast to the indexed shape "
                         f"{shape_str(x.data[idx].shape)}")
    return PutRegion.apply(x, expand(v, target) if v.data.shape != target else v, idx=idx, accumulate=accumulate)


def index_put(x: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """x with x[indices] = values (``accumulate``: +=), ``indices`` a tuple of index tensors (None: a whole dim)."""
    idx = tuple(slice(None) if i is None else (i.data if isinstance(i, Tensor) else np.asarray(i)) for i in indices)
    return _put(x, idx, values, accumulate, "index_put")


def put(x: Tensor, index, source, accumulate: bool = False) -> Tensor:
    """x with its flattened elements at ``index`` replaced by (or, ``accumulate``, increased by) ``source``."""
    idx = _check_index(index, "put", x.data.size).reshape(-1)
    src = reshape(source, (-1,)) if isinstance(source, Tensor) else source
    return reshape(_put(reshape(x, (-1,)), (idx,), src, accumulate, "put"), x.data.shape)


def select_scatter(x: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """x with the slice ``index`` along ``dim`` replaced by ``src``."""
    (axis,) = normalize_dims(dim, x.data.ndim, "select_scatter")
    return _put(x, (slice(None),) * axis + (index,), src, False, "select_scatter")


def slice_scatter(x: Tensor, src: Tensor, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """x with x[start:end:step] along ``dim`` replaced by ``src``."""
    (axis,) = normalize_dims(dim, x.data.ndim, "slice_scatter")
    return _put(x, (slice(None),) * axis + (slice(start, end, step),), src, False, "slice_scatter")
