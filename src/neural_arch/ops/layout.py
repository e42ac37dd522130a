"""Rearranging and joining, composed from shape.py's primitives: rot90, fliplr/flipud,
movedim, select, tensor_split/hsplit/vsplit/dsplit, atleast_1d/2d/3d, hstack/vstack/
dstack/column_stack, meshgrid, cartesian_prod, combinations, and the index
factories tril_indices/triu_indices and logspace."""

from __future__ import annotations

import itertools

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.index import getitem
from neural_arch.ops.shape import cat, expand, flip, permute, reshape, stack, transpose

__all__ = [
    "atleast_1d", "atleast_2d", "atleast_3d", "cartesian_prod", "column_stack", "combinations", "dsplit", "dstack",
    "fliplr", "flipud", "hsplit", "hstack", "logspace", "meshgrid", "moveaxis", "movedim", "row_stack", "rot90",
    "select", "tensor_split", "tril_indices", "triu_indices", "vsplit", "vstack",
]


def rot90(x: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane ``dims`` (from the first towards the second)."""
    if len(dims) != 2:
        raise ShapeError(f"rot90: dims must name two dims, got {dims}")
    d0, d1 = normalize_dims(dims[0], x.data.ndim, "rot90")[0], normalize_dims(dims[1], x.data.ndim, "rot90")[0]
    if d0 == d1:
        raise ShapeError(f"rot90: the two dims must differ, got {dims}")
    k %= 4
    if k == 0:
        return getitem(x, ...)  # a copy that stays in the graph
    if k == 2:
        return flip(x, (d0, d1))
    if k == 1:
        return transpose(flip(x, d1), d0, d1)
    return flip(transpose(x, d0, d1), d1)


def fliplr(x: Tensor) -> Tensor:
    """Reverse dim 1 (left/right)."""
    if x.data.ndim < 2:
        raise ShapeError(f"fliplr: needs at least 2 dims, got {shape_str(x.shape)}")
    return flip(x, 1)


def flipud(x: Tensor) -> Tensor:
    """Reverse dim 0 (up/down)."""
    if x.data.ndim < 1:
        raise ShapeError("flipud: needs at least 1 dim")
    return flip(x, 0)


def movedim(x: Tensor, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination``; the others keep their order."""
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    nd = x.data.ndim
    src = [normalize_dims(s, nd, "movedim")[0] for s in src]
    dst = [normalize_dims(d, nd, "movedim")[0] for d in dst]
    if len(src) != len(dst):
        raise ShapeError(f"movedim: {len(src)} source dims but {len(dst)} destinations")
    order = [None] * nd
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(nd) if i not in src)
    order = [o if o is not None else next(rest) for o in order]
    return permute(x, *order)


moveaxis = movedim


def select(x: Tensor, dim: int, index: int) -> Tensor:
    """x[..., index, ...] with ``index`` at ``dim`` (that dim removed)."""
    (axis,) = normalize_dims(dim, x.data.ndim, "select")
    return getitem(x, (slice(None),) * axis + (index,))


def tensor_split(x: Tensor, indices_or_sections, dim: int = 0):
    """Split into n nearly equal parts (the first ones one larger), or at the given indices."""
    (axis,) = normalize_dims(dim, x.data.ndim, "tensor_split")
    n = x.data.shape[axis]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k <= 0:
            raise ShapeError(f"tensor_split: the number of sections must be positive, got {k}")
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = list(itertools.accumulate(sizes))[:-1]
    else:
        bounds = [int(i) for i in (indices_or_sections.tolist() if isinstance(indices_or_sections, Tensor)
                                    else indices_or_sections)]
    edges = [0] + bounds + [n]
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (slice(min(a, n), max(min(b, n), min(a, n))),)) for a, b in zip(edges, edges[1:]))


def _split_dim(x, sections, axis, op):
    if isinstance(sections, int) and x.data.shape[axis] % sections:
        raise ShapeError(f"{op}: dim {axis} of size {x.data.shape[axis]} does not divide into {sections} parts")
    return tensor_split(x, sections, axis)


def hsplit(x: Tensor, sections):
    """Split along dim 1 (dim 0 for 1-d tensors)."""
    return _split_dim(x, sections, 1 if x.data.ndim > 1 else 0, "hsplit")


def vsplit(x: Tensor, sections):
    """Split along dim 0."""
    return _split_dim(x, sections, 0, "vsplit")


def dsplit(x: Tensor, sections):
    """Split along dim 2."""
    return _split_dim(x, sections, 2, "dsplit")


def _atleast(tensors, nd, where):
    """Each tensor with fewer than ``nd`` dims reshaped to ``where(shape)``; one tensor in, one out."""
    seq = len(tensors) == 1 and isinstance(tensors[0], (list, tuple))
    out = tuple(reshape(t, where(t.data.shape)) if t.data.ndim < nd else t for t in (tensors[0] if seq else tensors))
    return out if seq or len(out) != 1 else out[0]


def atleast_1d(*tensors):
    """Tensors with fewer than 1 dim reshaped to 1 dim."""
    return _atleast(tensors, 1, lambda s: (1,))


def atleast_2d(*tensors):
    """Tensors with fewer than 2 dims given leading size-1 dims."""
    return _atleast(tensors, 2, lambda s: (1,) * (2 - len(s)) + s)


def atleast_3d(*tensors):
    """Tensors with fewer than 3 dims reshaped to 3 dims as numpy.atleast_3d."""
    return _atleast(tensors, 3, lambda s: {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])


def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 for 1-d tensors)."""
    ts = [atleast_1d(t) for t in tensors]
    return cat(ts, 0 if ts[0].data.ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Join as rows (1-d tensors become rows)."""
    return cat([atleast_2d(t) for t in tensors], 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    """Join along dim 2 (inputs made at least 3-d)."""
    return cat([atleast_3d(t) for t in tensors], 2)


def column_stack(tensors) -> Tensor:
    """Join as columns (1-d tensors become columns)."""
    return hstack([reshape(t, (-1, 1)) if t.data.ndim <= 1 else t for t in tensors])


def meshgrid(*tensors, indexing: str = "ij"):
    """Coordinate grids from 1-d tensors; ``indexing`` 'ij' (matrix, torch's default) or 'xy' (Cartesian)."""
    ts = list(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else list(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    n = len(ts)
    pos = [1, 0, *range(2, n)] if indexing == "xy" and n >= 2 else list(range(n))  # the dim each input runs along
    sizes = [0] * n
    for p, t in zip(pos, ts):
        sizes[p] = t.data.size  # (the inputs are 1-d: reshaping below flattens any other)
    return tuple(expand(reshape(t, [-1 if d == p else 1 for d in range(n)]), tuple(sizes)) for p, t in zip(pos, ts))


def cartesian_prod(*tensors) -> Tensor:
    """All combinations of one element from each 1-d tensor, one per row."""
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, (-1,)) for g in grids], 1)


def combinations(x: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """All length-``r`` combinations of the elements of a 1-d tensor, one per row (itertools' order)."""
    if x.data.ndim != 1:
        raise ShapeError(f"combinations: expects a 1-d tensor, got {shape_str(x.shape)}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(x.data.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return getitem(x, idx) if idx.size else Tensor._wrap(np.zeros(0, dtype=x.data.dtype))


def _triangle_indices(row: int, col: int, offset: int, upper: bool, dtype):
    full = np.ones((row, col), bool)
    r, c = np.nonzero(np.triu(full, offset) if upper else np.tril(full, offset))
    return Tensor._wrap(np.stack([r, c]).astype(resolve_dtype(dtype) if dtype is not None else np.int64))


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row/column indices of the lower triangle of a row x col matrix."""
    return _triangle_indices(row, col, offset, False, dtype)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row/column indices of the upper triangle of a row x col matrix."""
    return _triangle_indices(row, col, offset, True, dtype)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` values from base**start to base**end, evenly spaced in the exponent."""
    d = get_default_dtype() if dtype is None else resolve_dtype(dtype)
    arr = np.power(float(base), np.linspace(float(start), float(end), int(steps))).astype(d)
    return Tensor(arr, requires_grad=requires_grad) if requires_grad else Tensor._wrap(arr)
