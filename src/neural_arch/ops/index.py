"""Indexing ops: ``x[idx]``, narrow, gather, scatter_add, index_select,
masked_fill, and the index-based pad modes (reflect, replicate, circular).

Backward of every gather-like op is a scatter that *adds*: when an index
repeats, its gradients accumulate (``np.add.at``).
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor, normalize_index
from neural_arch.backend.device import array_namespace
from neural_arch.errors import DTypeError, IndexingError, ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.elementwise import Where


def _is_basic(idx) -> bool:
    """Only ints, slices, None and Ellipsis: the result is a view, no index repeats."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in items)


def _scatter_add_into(out, idx, grad):
    array_namespace(out).add.at(out, idx, grad)


class Index(Function):
    """y = x[idx]     dL/dx = zeros with dL/dy added at idx (repeated indices accumulate)"""

    @staticmethod
    def forward(ctx, x, idx):
        ctx.shape, ctx.idx = x.shape, idx
        return x[idx]

    @staticmethod
    def backward(ctx, grad):
        out = array_namespace(grad).zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic(ctx.idx):
            out[ctx.idx] = grad
        else:
            _scatter_add_into(out, ctx.idx, grad)
        return out


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]``: basic and advanced indexing as in torch; the gradient scatters back (repeated indices add)."""
    return Index.apply(x, idx=normalize_index(index))


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``length`` entries of ``x`` along ``dim`` from ``start`` (torch.narrow)."""
    axis = normalize_dims(dim, x.data.ndim, "narrow")[0]
    n = x.data.shape[axis]
    if start < 0:
        start += n
    if not (0 <= start and start + length <= n and length >= 0):
        raise IndexingError(f"narrow: [{start}, {start + length}) is outside dim {axis} of size {n}")
    idx = (slice(None),) * axis + (slice(start, start + length),)
    return Index.apply(x, idx=idx)


def _full_index(index, axis):
    """Index arrays addressing x[..., index[...], ...] elementwise (for add.at)."""
    grids = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


class Gather(Function):
    """y[i][j] = x[index[i][j]][j] (along dim)     dL/dx = dL/dy scatter-added at index"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, index, axis):
        ctx.shape, ctx.axis, ctx.index = x.shape, axis, index
        region = tuple(slice(0, s) if d != axis else slice(None) for d, s in enumerate(index.shape))
        return np.take_along_axis(x[region], index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        out = array_namespace(grad).zeros(ctx.shape, dtype=grad.dtype)
        _scatter_add_into(out, _full_index(ctx.index, ctx.axis), grad)
        return out


class ScatterAdd(Function):
    """y = x; y[index[i][j]][j] += src[i][j]      dL/dx = dL/dy,  dL/dsrc = dL/dy gathered at index"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, src, index, axis):
        ctx.axis, ctx.index, ctx.src_shape = axis, index, src.shape
        out = x.copy()
        region = tuple(slice(0, s) for s in index.shape)
        _scatter_add_into(out, _full_index(index, axis), src[region])
        return out

    @staticmethod
    def backward(ctx, grad):
        gsrc = None
        if ctx.needs_input_grad[1]:
            gsrc = np.zeros(ctx.src_shape, dtype=grad.dtype)
            region = tuple(slice(0, s) for s in ctx.index.shape)
            gsrc[region] = grad[_full_index(ctx.index, ctx.axis)]
        return grad, gsrc


class IndexSelect(Function):
    """y = x.take(index, axis)     dL/dx = dL/dy added at index along axis"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, index, axis):
        ctx.shape, ctx.index, ctx.axis = x.shape, index, axis
        return np.take(x, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        out = array_namespace(grad).zeros(ctx.shape, dtype=grad.dtype)
        _scatter_add_into(np.moveaxis(out, ctx.axis, 0), ctx.index, np.moveaxis(grad, ctx.axis, 0))
        return out


def _check_index(index, op: str, size: int | None = None):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{op}: index must be an integer tensor, got {idx.dtype}")
    if size is not None and idx.size and (idx.min() < -size or idx.max() >= size):
        raise IndexingError(f"{op}: index out of range for a dim of size {size} (min {idx.min()}, max {idx.max()})")
    return idx


def gather(x: Tensor, dim: int, index) -> Tensor:
    """Values of ``x`` picked along ``dim`` by ``index``: ``y[i][j] = x[index[i][j]][j]`` for dim 0 (torch.gather)."""
    axis = normalize_dims(dim, x.data.ndim, "gather")[0]
    idx = _check_index(index, "gather", x.data.shape[axis])
    if idx.ndim != x.data.ndim or any(i > s for d, (i, s) in enumerate(zip(idx.shape, x.data.shape)) if d != axis):
        raise ShapeError(f"gather: index {shape_str(idx.shape)} must have the dims of the input {shape_str(x.shape)} "
                         f"and be no larger outside dim {axis}")
    return Gather.apply(x, index=idx, axis=axis)


def scatter_add(x: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """A copy of ``x`` with ``src``'s values added at ``index`` along ``dim`` (torch.scatter_add)."""
    axis = normalize_dims(dim, x.data.ndim, "scatter_add")[0]
    idx = _check_index(index, "scatter_add", x.data.shape[axis])
    if idx.ndim != x.data.ndim or any(i > s for i, s in zip(idx.shape, src.data.shape)):
        raise ShapeError(f"scatter_add: index {shape_str(idx.shape)} must fit inside src {shape_str(src.shape)}")
    if src.data.dtype != x.data.dtype:
        raise DTypeError(f"scatter_add: src dtype {src.dtype} differs from self dtype {x.dtype}")
    return ScatterAdd.apply(x, src, index=idx, axis=axis)


def index_select(x: Tensor, dim: int, index) -> Tensor:
    """The entries of ``x`` at the 1-d ``index`` along ``dim`` (torch.index_select)."""
    axis = normalize_dims(dim, x.data.ndim, "index_select")[0]
    idx = _check_index(index, "index_select", x.data.shape[axis])
    if idx.ndim > 1:
        raise ShapeError(f"index_select: index must be 1-d, got {shape_str(idx.shape)}")
    return IndexSelect.apply(x, index=idx, axis=axis)


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """``value`` where ``mask`` is True, ``x`` elsewhere (mask broadcasts to x)."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_fill: mask must be bool, got {m.dtype}")
    try:
        np.broadcast_shapes(m.shape, x.data.shape)
    except ValueError:
        raise ShapeError(f"masked_fill: mask {shape_str(m.shape)} does not broadcast to {shape_str(x.shape)}") from None
    if isinstance(value, Tensor):
        v = value if value.data.dtype == x.data.dtype else value.to(x.dtype)
    else:
        v = Tensor._wrap(array_namespace(x.data).asarray(value, dtype=x.data.dtype))
    out = Where.apply(v, x, cond=m)
    if out.data.shape != x.data.shape:
        raise ShapeError(f"masked_fill: mask {shape_str(m.shape)} would enlarge the input {shape_str(x.shape)}")
    return out


def _pad_indices(n: int, lo: int, hi: int, mode: str):
    pos = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        # torch crops negative pads first, then wraps around what is left
        keep = np.arange(max(-lo, 0), n - max(-hi, 0))
        if max(lo, 0) > len(keep) or max(hi, 0) > len(keep):
            raise ShapeError(f"pad: circular padding ({lo}, {hi}) larger than the dim ({n})")
        return keep[np.arange(-max(lo, 0), len(keep) + max(hi, 0)) % len(keep)]
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise ShapeError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the dim ({n})")
        period = 2 * (n - 1)
        pos = np.abs(pos) % period if period else np.zeros_like(pos)
        return np.where(pos >= n, period - pos, pos)
    raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")


def pad_nonconstant(x: Tensor, widths, mode: str) -> Tensor:
    """Reflect / replicate / circular padding as an index_select per padded dim."""
    out = x
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            out = IndexSelect.apply(out, index=_pad_indices(x.data.shape[axis], lo, hi, mode), axis=axis)
    return out
