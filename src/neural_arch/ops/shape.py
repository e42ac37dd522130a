"""Shape ops: reshape, transpose/permute, squeeze/unsqueeze, expand, flatten,
repeat/tile, cat/stack/split, flip, roll, tril/triu, pad.

They move or copy elements without arithmetic, so every backward is the
inverse movement of the gradient (or, for expand/repeat, a sum over copies).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from neural_arch.autograd.autocast import PROMOTE
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import promote_types
from neural_arch.errors import IndexingError, ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.index import narrow, pad_nonconstant

__all__ = [
    "broadcast_tensors", "broadcast_to", "cat", "chunk", "concat", "concatenate", "expand", "expand_as",
    "flatten", "flip", "pad", "permute", "repeat", "repeat_interleave", "reshape", "reshape_as", "roll",
    "split", "squeeze", "stack", "swapaxes", "t", "tile", "transpose", "tril", "triu", "unbind", "unflatten",
    "unsqueeze", "view", "view_as",
]


class Reshape(Function):
    """y = x viewed with a new shape      dL/dx = dL/dy reshaped back"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Permute(Function):
    """y = x with axes permuted      dL/dx = dL/dy permuted by the inverse permutation"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.inverse)


class Expand(Function):
    """y = x broadcast to a shape (a view)     dL/dx = sum of dL/dy over the copies (the engine's unbroadcast)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Tile(Function):
    """y = x tiled reps times per axis     dL/dx = sum over the tiles"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, reps):
        ctx.shape = x.shape
        return np.tile(x, reps)

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.shape
        reps = grad.shape[: grad.ndim - len(shape)]
        split = list(reps)
        tiled = grad.shape[grad.ndim - len(shape):]
        for s, t in zip(shape, tiled):
            split += [t // s if s else 0, s]
        g = grad.reshape(split)
        axes = tuple(range(len(reps))) + tuple(len(reps) + 2 * i for i in range(len(shape)))
        return g.sum(axis=axes)


class Cat(Function):
    """y = [x_1, x_2, ...] along an axis      dL/dx_k = the k-th slice of dL/dy"""

    autocast = PROMOTE  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    """y = stack(x_1, x_2, ...) on a new axis   dL/dx_k = dL/dy[..., k, ...]"""

    autocast = PROMOTE  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.moveaxis(grad, ctx.axis, 0))


class Flip(Function):
    """y = x reversed along axes      dL/dx = dL/dy reversed along the same axes"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.flip(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.axes)


class Roll(Function):
    """y = x rolled by shifts        dL/dx = dL/dy rolled back"""

    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return np.roll(x, shifts, axes)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return np.roll(grad, back, ctx.axes)


class Triangle(Function):
    """y = x with the part above (tril) / below (triu) diagonal k zeroed     dL/dx = the same mask on dL/dy"""

    @staticmethod
    def forward(ctx, x, k, upper):
        ctx.k, ctx.upper = k, upper
        return np.triu(x, k) if upper else np.tril(x, k)

    @staticmethod
    def backward(ctx, grad):
        return np.triu(grad, ctx.k) if ctx.upper else np.tril(grad, ctx.k)


class ConstantPad(Function):
    """y = x surrounded by a constant      dL/dx = the interior of dL/dy"""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inner]


# -- the functional API ------------------------------------------------------------------------------
def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """A tensor with the same elements in a new shape (one dim may be -1)."""
    shape = _shape_arg(shape)
    if shape == x.data.shape:
        return x
    n = x.data.size
    known = math.prod(s for s in shape if s != -1)
    if shape.count(-1) > 1 or (-1 in shape and (known == 0 or n % known)) or (-1 not in shape and known != n):
        raise ShapeError(f"reshape: cannot view {shape_str(x.shape)} ({n} elements) as {shape}")
    return Reshape.apply(x, shape=shape)


view = reshape


def view_as(x: Tensor, other: Tensor) -> Tensor:
    """``x`` reshaped to ``other``'s shape (Tensor.view_as, Tensor.reshape_as)."""
    return reshape(x, other.shape)


reshape_as = view_as


def permute(x: Tensor, *dims) -> Tensor:
    """``x`` with its dims reordered (torch.permute)."""
    dims = _shape_arg(dims)
    nd = x.data.ndim
    if len(dims) != nd or sorted(d % nd for d in dims) != list(range(nd)):
        raise ShapeError(f"permute: {dims} is not a permutation of the {nd} dims of {shape_str(x.shape)}")
    axes = tuple(d % nd for d in dims)
    return Permute.apply(x, axes=axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """``x`` with dims ``dim0`` and ``dim1`` swapped (torch.transpose; ``swapaxes`` is the same op)."""
    nd = x.data.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    d0, d1 = normalize_dims(dim0, nd, "transpose")[0], normalize_dims(dim1, nd, "transpose")[0]
    if d0 == d1:
        return x
    axes = list(range(nd))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(x, axes=tuple(axes))


swapaxes = transpose


def t(x: Tensor) -> Tensor:
    """Transpose of a matrix (0-d and 1-d tensors are returned as they are)."""
    if x.data.ndim > 2:
        raise ShapeError(f"t(): expects a tensor with <= 2 dims, got {shape_str(x.shape)}; use .mT or transpose")
    return x if x.data.ndim < 2 else transpose(x, 0, 1)


def T(x: Tensor) -> Tensor:  # noqa: N802 - torch's name
    """All dims reversed."""
    return x if x.data.ndim < 2 else Permute.apply(x, axes=tuple(range(x.data.ndim - 1, -1, -1)))


def mT(x: Tensor) -> Tensor:  # noqa: N802
    """The last two dims swapped (batched matrix transpose)."""
    if x.data.ndim < 2:
        raise ShapeError(f"mT: needs at least 2 dims, got {shape_str(x.shape)}")
    return transpose(x, -2, -1)


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove dims of size 1 (only ``dim`` if given; a dim whose size is not 1 is left alone, as torch)."""
    shape = x.data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        axes = normalize_dims(dim, x.data.ndim, "squeeze")
        new = tuple(s for i, s in enumerate(shape) if not (i in axes and s == 1))
    return x if new == shape else Reshape.apply(x, shape=new)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """``x`` with a size-1 dim inserted at ``dim`` (torch.unsqueeze)."""
    nd = x.data.ndim + 1
    if not -nd <= dim < nd:
        raise IndexingError(f"unsqueeze: dim {dim} out of range for a result with {nd} dims")
    shape = list(x.data.shape)
    shape.insert(dim % nd, 1)
    return Reshape.apply(x, shape=tuple(shape))


def expand(x: Tensor, *shape) -> Tensor:
    """Broadcast to ``shape`` without copying (-1 keeps a dim)."""
    shape = _shape_arg(shape)
    lead = len(shape) - x.data.ndim
    if lead < 0:
        raise ShapeError(f"expand: target {shape} has fewer dims than the tensor {shape_str(x.shape)}")
    if any(s == -1 for s in shape[:lead]):
        raise ShapeError(f"expand: -1 is not allowed for the new leading dims of {shape} (input {shape_str(x.shape)})")
    target = tuple(x.data.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    for i, s in enumerate(x.data.shape):
        if s != 1 and s != target[i + lead]:
            raise ShapeError(f"expand: cannot expand {shape_str(x.shape)} to {shape_str(target)} "
                             f"(dim {i} is {s}, not 1)")
    return x if target == x.data.shape else Expand.apply(x, shape=target)


def broadcast_to(x: Tensor, shape) -> Tensor:
    """``x`` expanded to ``shape`` by broadcasting (torch.broadcast_to)."""
    return expand(x, tuple(shape))


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    """``x`` expanded to ``other``'s shape (Tensor.expand_as)."""
    return expand(x, other.shape)


def broadcast_tensors(*tensors):
    """The tensors expanded to their common broadcast shape (torch.broadcast_tensors)."""
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dims ``start_dim`` .. ``end_dim`` merged into one (torch.flatten)."""
    nd = x.data.ndim
    if nd == 0:
        return reshape(x, (1,))
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.data.shape
    return reshape(x, shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """Dim ``dim`` split into ``sizes`` (torch.unflatten)."""
    nd = x.data.ndim
    d = normalize_dims(dim, nd, "unflatten")[0]
    shape = x.data.shape
    return reshape(x, shape[:d] + tuple(sizes) + shape[d + 1 :])


def repeat(x: Tensor, *repeats) -> Tensor:
    """torch's ``repeat``: tile the whole tensor ``repeats[i]`` times along dim i."""
    reps = _shape_arg(repeats)
    if len(reps) < x.data.ndim:
        raise ShapeError(f"repeat: needs at least {x.data.ndim} repeat counts, got {len(reps)}")
    return Tile.apply(x, reps=reps)


def tile(x: Tensor, dims) -> Tensor:
    """``x`` repeated ``dims`` times along each dim (torch.tile)."""
    return Tile.apply(x, reps=(1,) * (x.data.ndim - len(dims)) + tuple(dims))


def repeat_interleave(x: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times along ``dim`` (flattened when None)."""
    if dim is None:
        x, dim = flatten(x), 0
    d = normalize_dims(dim, x.data.ndim, "repeat_interleave")[0]
    shape = x.data.shape
    y = expand(unsqueeze(x, d + 1), shape[: d + 1] + (repeats,) + shape[d + 1 :])
    return reshape(y, shape[:d] + (shape[d] * repeats,) + shape[d + 1 :])


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (dtypes promoted; empty 1-d tensors skipped, as in torch)."""
    tensors = [t for t in tensors if not (t.data.ndim == 1 and t.data.shape[0] == 0)] or list(tensors)[:1]
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of tensors")
    nd = tensors[0].data.ndim
    if nd == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    axis = normalize_dims(dim, nd, "cat")[0]
    ref = tensors[0].data.shape
    for t in tensors[1:]:
        s = t.data.shape
        if len(s) != nd or any(a != b for i, (a, b) in enumerate(zip(s, ref)) if i != axis):
            raise ShapeError(
                f"cat: sizes must match except in dim {axis}; got {', '.join(shape_str(u.shape) for u in tensors)}"
            )
    tensors = _promote_all(tensors)
    return Cat.apply(*tensors, axis=axis)


concat = concatenate = cat


def _promote_all(tensors):
    dtype = tensors[0].data.dtype
    for t in tensors[1:]:
        dtype = promote_types(dtype, t.data.dtype)
    return [t if t.data.dtype == dtype else t.to(dtype) for t in tensors]


def stack(tensors, dim: int = 0) -> Tensor:
    """The tensors joined along a new dim ``dim`` (torch.stack)."""
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of tensors")
    ref = tensors[0].data.shape
    if any(t.data.shape != ref for t in tensors):
        raise ShapeError("stack: all tensors must have one shape; got "
                         + ", ".join(shape_str(u.shape) for u in tensors))
    axis = normalize_dims(dim, len(ref) + 1, "stack")[0]
    return Stack.apply(*_promote_all(tensors), axis=axis)


def split(x: Tensor, split_size_or_sections, dim: int = 0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given sizes."""
    axis = normalize_dims(dim, x.data.ndim, "split")[0]
    n = x.data.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ShapeError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - i) for i in range(0, n, size)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} do not add up to {n}, the size of dim {axis}")
    return tuple(narrow(x, axis, start, s) for start, s in zip(itertools.accumulate(sizes, initial=0), sizes))


def chunk(x: Tensor, chunks: int, dim: int = 0):
    """``chunks`` pieces of equal size (the last smaller), as torch.chunk."""
    if chunks <= 0:
        raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    axis = normalize_dims(dim, x.data.ndim, "chunk")[0]
    n = x.data.shape[axis]
    if n == 0:  # torch: an empty dim gives `chunks` empty pieces
        return tuple(narrow(x, axis, 0, 0) for _ in range(chunks))
    return split(x, -(-n // chunks), dim)


def unbind(x: Tensor, dim: int = 0):
    """The slices of ``x`` along ``dim``, as a tuple, that dim removed (torch.unbind)."""
    axis = normalize_dims(dim, x.data.ndim, "unbind")[0]
    return tuple(squeeze(p, axis) for p in split(x, 1, axis))


def flip(x: Tensor, dims) -> Tensor:
    """``x`` reversed along ``dims`` (torch.flip)."""
    axes = normalize_dims(dims, x.data.ndim, "flip")
    return Flip.apply(x, axes=axes)


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """``x`` rolled by ``shifts`` along ``dims`` (or flattened), wrapping around (torch.roll)."""
    if dims is None:
        return reshape(Roll.apply(flatten(x), shifts=shifts, axes=0), x.data.shape)
    if isinstance(shifts, int):
        shifts, dims = (shifts,), (dims,) if isinstance(dims, int) else tuple(dims)
    return Roll.apply(x, shifts=tuple(shifts), axes=tuple(dims))


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims from diagonal ``diagonal`` down; the rest zero (torch.tril)."""
    return Triangle.apply(x, k=diagonal, upper=False)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims from diagonal ``diagonal`` up; the rest zero (torch.triu)."""
    return Triangle.apply(x, k=diagonal, upper=True)


def pad(x: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """torch's ``F.pad`` ordering: ``pad = (last_lo, last_hi, second_last_lo, ...)``."""
    if len(pad) % 2 or len(pad) // 2 > x.data.ndim:
        raise ShapeError(f"pad: needs pairs for at most {x.data.ndim} dims, got {tuple(pad)}")
    widths = [(0, 0)] * x.data.ndim
    for i in range(len(pad) // 2):
        widths[x.data.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode != "constant":
        return pad_nonconstant(x, widths, mode)
    for axis, (lo, hi) in enumerate(widths):  # negative padding crops first
        if lo < 0 or hi < 0:
            n = x.data.shape[axis]
            x = narrow(x, axis, -min(lo, 0), n + min(hi, 0) + min(lo, 0))
    return ConstantPad.apply(x, widths=tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths), value=value)
