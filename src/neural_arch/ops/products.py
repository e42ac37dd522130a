"""Diagonals and composite products: diagonal, diag_embed, diag, diagflat, trace,
the fused ``add*`` products (addmm, addbmm, baddbmm, addmv, addr), kron, inner,
tensordot, multi_dot, chain_matmul, cross, cdist, dist, block_diag, vander.

``Diagonal`` and ``DiagEmbed`` are the primitives (each is the other's backward);
the rest are compositions of differentiable ops, so their gradients come from
ops already tested.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast_args
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops import elementwise as ew
from neural_arch.ops import reduce
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops._operands import as_tensor
from neural_arch.ops.index import getitem
from neural_arch.ops.linalg import einsum, matmul, outer
from neural_arch.ops.matrix_functions import multi_dot
from neural_arch.ops.shape import _promote_all, broadcast_to, cat, pad, reshape, stack, unsqueeze

__all__ = [
    "addbmm", "addmm", "addmv", "addr", "baddbmm", "block_diag", "cdist", "chain_matmul", "cross", "diag",
    "diag_embed", "diagflat", "diagonal", "dist", "inner", "kron", "tensordot", "trace", "vander", "vdot",
]


def _diag_index(n1: int, n2: int, offset: int):
    """Row and column indices of diagonal ``offset`` of an (n1, n2) matrix."""
    if offset >= 0:
        length = max(min(n1, n2 - offset), 0)
        rows = np.arange(length)
        return rows, rows + offset
    length = max(min(n1 + offset, n2), 0)
    cols = np.arange(length)
    return cols - offset, cols


class Diagonal(Function):
    """y = diagonal ``offset`` of x over (dim1, dim2), appended as the last dim
    dL/dx = zeros with dL/dy written onto that diagonal"""

    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        ctx.shape, ctx.offset, ctx.dims = x.shape, offset, (dim1, dim2)
        return np.diagonal(x, offset, dim1, dim2).copy()

    @staticmethod
    def backward(ctx, grad):
        d1, d2 = ctx.dims
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        moved = np.moveaxis(out, (d1, d2), (-2, -1))
        rows, cols = _diag_index(moved.shape[-2], moved.shape[-1], ctx.offset)
        moved[..., rows, cols] = grad
        return out


class DiagEmbed(Function):
    """y[..., i, i + offset] = x[..., i] (zeros elsewhere), the new dims at (dim1, dim2)
    dL/dx = diagonal ``offset`` of dL/dy"""

    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        n = x.shape[-1] + abs(offset)
        out = np.zeros(x.shape[:-1] + (n, n), dtype=x.dtype)
        rows, cols = _diag_index(n, n, offset)
        out[..., rows, cols] = x
        ctx.offset, ctx.dims = offset, (dim1, dim2)
        return np.moveaxis(out, (-2, -1), (dim1, dim2))

    @staticmethod
    def backward(ctx, grad):
        d1, d2 = ctx.dims
        moved = np.moveaxis(grad, (d1, d2), (-2, -1))
        rows, cols = _diag_index(moved.shape[-2], moved.shape[-1], ctx.offset)
        return moved[..., rows, cols]


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal ``offset`` over dims (dim1, dim2), as a new last dim (a copy, not a view)."""
    nd = x.data.ndim
    if nd < 2:
        raise ShapeError(f"diagonal: needs at least 2 dims, got {shape_str(x.shape)}")
    (a1,), (a2,) = normalize_dims(dim1, nd, "diagonal"), normalize_dims(dim2, nd, "diagonal")
    if a1 == a2:
        raise ShapeError(f"diagonal: dim1 and dim2 must differ, both are {a1}")
    return Diagonal.apply(x, offset=offset, dim1=a1, dim2=a2)


def diag_embed(x: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices with the last dim of ``x`` on their diagonal ``offset``, placed at dims (dim1, dim2)."""
    nd = x.data.ndim + 1
    (a1,), (a2,) = normalize_dims(dim1, nd, "diag_embed"), normalize_dims(dim2, nd, "diag_embed")
    if a1 == a2:
        raise ShapeError(f"diag_embed: dim1 and dim2 must differ, both are {a1}")
    return DiagEmbed.apply(x, offset=offset, dim1=a1, dim2=a2)


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """1-d input: a square matrix with it on diagonal ``diagonal``; 2-d input: that diagonal."""
    if x.data.ndim == 1:
        return DiagEmbed.apply(x, offset=diagonal, dim1=0, dim2=1)
    if x.data.ndim == 2:
        return Diagonal.apply(x, offset=diagonal, dim1=0, dim2=1)
    raise ShapeError(f"diag: expects a 1-d or 2-d tensor, got {shape_str(x.shape)}")


def diagflat(x: Tensor, offset: int = 0) -> Tensor:
    """The flattened input on diagonal ``offset`` of a square matrix."""
    return DiagEmbed.apply(reshape(x, (-1,)), offset=offset, dim1=0, dim2=1)


def trace(x: Tensor) -> Tensor:
    """Sum of the main diagonal of a matrix."""
    if x.data.ndim != 2:
        raise ShapeError(f"trace: expects a matrix, got {shape_str(x.shape)}")
    (x,) = autocast_args(FP32, x)  # on torch's float32 list
    return reduce.sum(Diagonal.apply(x, offset=0, dim1=0, dim2=1))


# -- fused products: beta * input + alpha * (product) ----------------------------------------------------
def _scaled_sum(inp, prod, beta, alpha) -> Tensor:
    if alpha != 1:
        prod = ew.mul(prod, alpha)
    if beta == 0:  # as torch: input is ignored (its NaNs do not propagate)
        return prod
    return ew.add(ew.mul(inp, beta) if beta != 1 else inp, prod)


def _need(op: str, nd: int, **tensors):
    """Each of ``tensors`` (by name) must have ``nd`` dims."""
    for what, t in tensors.items():
        if t.data.ndim != nd:
            raise ShapeError(f"{op}: {what} must be {nd}-d, got {shape_str(t.shape)}")


def addmm(inp, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2)"""
    _need("addmm", 2, mat1=mat1, mat2=mat2)
    return _scaled_sum(inp, matmul(mat1, mat2), beta, alpha)


def addbmm(inp, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * sum_b (batch1[b] @ batch2[b])"""
    _need("addbmm", 3, batch1=batch1, batch2=batch2)
    return _scaled_sum(inp, reduce.sum(matmul(batch1, batch2), 0), beta, alpha)


def baddbmm(inp, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (batch1 @ batch2), batched"""
    _need("baddbmm", 3, batch1=batch1, batch2=batch2)
    return _scaled_sum(inp, matmul(batch1, batch2), beta, alpha)


def addmv(inp, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat @ vec)"""
    _need("addmv", 2, mat=mat)
    _need("addmv", 1, vec=vec)
    return _scaled_sum(inp, matmul(mat, vec), beta, alpha)


def addr(inp, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2)"""
    _need("addr", 1, vec1=vec1, vec2=vec2)
    return _scaled_sum(inp, outer(vec1, vec2), beta, alpha)


# -- other products --------------------------------------------------------------------------------------
def kron(a: Tensor, b: Tensor) -> Tensor:
    """The Kronecker product: block (i, j) of the result is a[i, j] * b (any number of dims)."""
    a, b = _promote_all([as_tensor(a), as_tensor(b)])
    nd = max(a.data.ndim, b.data.ndim)
    a = reshape(a, (1,) * (nd - a.data.ndim) + a.data.shape)
    b = reshape(b, (1,) * (nd - b.data.ndim) + b.data.shape)
    # interleave: a's dims at even positions, b's at odd ones, then merge each pair
    ea = reshape(a, tuple(s for d in a.data.shape for s in (d, 1)))
    eb = reshape(b, tuple(s for d in b.data.shape for s in (1, d)))
    return reshape(ew.mul(ea, eb), tuple(p * q for p, q in zip(a.data.shape, b.data.shape)))


def inner(a: Tensor, b: Tensor) -> Tensor:
    """Sum over the last dims of a and b (for scalars, their product)."""
    return ew.mul(a, b) if a.data.ndim == 0 or b.data.ndim == 0 else tensordot(a, b, dims=([-1], [-1]))


def vdot(a: Tensor, b: Tensor) -> Tensor:
    """The dot product of two 1-d tensors (real tensors: the same as ``dot``)."""
    _need("vdot", 1, input=a, other=b)
    return matmul(a, b)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract the last ``dims`` dims of a with the first of b (or the listed dims pairs)."""
    if isinstance(dims, int):
        da = list(range(a.data.ndim - dims, a.data.ndim))
        db = list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    da = [d % a.data.ndim for d in da]
    db = [d % b.data.ndim for d in db]
    if len(da) != len(db):
        raise ShapeError(f"tensordot: {len(da)} dims of a against {len(db)} of b")
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    sa = [next(letters) for _ in range(a.data.ndim)]
    sb = [next(letters) for _ in range(b.data.ndim)]
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in da] + [c for j, c in enumerate(sb) if j not in db]
    return einsum("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)


def chain_matmul(*matrices) -> Tensor:
    """The product of the matrices, left to right."""
    return multi_dot(list(matrices))


def cross(a: Tensor, b: Tensor, dim=None) -> Tensor:
    """The 3-d cross product along ``dim`` (default: the first dim of size 3, as torch.cross)."""
    a, b = _promote_all([as_tensor(a), as_tensor(b)])
    shape = np.broadcast_shapes(a.data.shape, b.data.shape)
    if dim is None:
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dim of size 3 in {shape_str(shape)}")
    (axis,) = normalize_dims(dim, len(shape), "cross")
    if shape[axis] != 3:
        raise ShapeError(f"cross: dim {axis} must have size 3, got {shape_str(shape)}")
    a, b = broadcast_to(a, shape), broadcast_to(b, shape)
    a0, a1, a2 = (getitem(a, (slice(None),) * axis + (i,)) for i in range(3))
    b0, b1, b2 = (getitem(b, (slice(None),) * axis + (i,)) for i in range(3))
    parts = [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0]
    return stack(parts, axis)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode=None) -> Tensor:
    """Pairwise p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M) -> (..., P, R)."""
    x1, x2 = autocast_args(FP32, x1, x2)  # on torch's float32 list
    if x1.data.ndim < 2 or x2.data.ndim < 2 or x1.data.shape[-1] != x2.data.shape[-1]:
        raise ShapeError(f"cdist: expects (..., P, M) and (..., R, M), got {shape_str(x1.shape)} and "
                         f"{shape_str(x2.shape)}")
    diff = ew.sub(unsqueeze(x1, -2), unsqueeze(x2, -3))
    return reduce.norm(diff, p, dim=-1)


def dist(a: Tensor, b: Tensor, p: float = 2) -> Tensor:
    """The p-norm of a - b."""
    return reduce.norm(ew.sub(a, b), p)


def block_diag(*tensors) -> Tensor:
    """A block-diagonal matrix from 0-, 1- or 2-d tensors."""
    mats = [reshape(t, (1, 1)) if t.data.ndim == 0 else reshape(t, (1, -1)) if t.data.ndim == 1 else t
            for t in _promote_all([as_tensor(t) for t in tensors])]
    if any(m.data.ndim != 2 for m in mats):
        raise ShapeError("block_diag: inputs must have at most 2 dims")
    cols = sum(m.data.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        w = m.data.shape[1]
        rows.append(pad(m, (left, cols - left - w)))
        left += w
    return cat(rows, 0)


def vander(x: Tensor, N=None, increasing: bool = False) -> Tensor:
    """Columns x^(N-1), ..., x^0 (``increasing``: x^0 first)."""
    n = x.data.shape[0] if N is None else N
    powers = list(range(n)) if increasing else list(range(n - 1, -1, -1))
    if not powers:
        return Tensor._wrap(np.zeros((x.data.shape[0], 0), dtype=x.data.dtype))
    return stack([ew.pow(x, k) if k else ew.add(ew.mul(x, 0), 1) for k in powers], 1)

