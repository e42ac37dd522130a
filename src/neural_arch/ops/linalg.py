"""Linear algebra: matmul (batched, broadcasting, ``@``) and einsum."""

from __future__ import annotations

import string

import numpy as np

from neural_arch.autograd.autocast import LOWER
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import gemm
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops._operands import binary_operands
from neural_arch.ops.shape import _promote_all, unsqueeze


class MatMul(Function):
    """Z = X Y          dL/dX = dL/dZ Y^T,   dL/dY = X^T dL/dZ

    1-d operands are treated as a row (X) or column (Y) vector and the added
    dim is removed again. A 2-d Y under a batched X (the Linear-layer case)
    gets its gradient from one GEMM over the flattened batch instead of a
    batch of GEMMs followed by a sum.
    """

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, y):
        MatMul.save_only(ctx, x, y)
        return gemm.matmul(x, y)

    @staticmethod
    def save_only(ctx, x, y):
        """What backward reads (``Function.save_only``): the operands, and which were vectors."""
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, y if ctx.needs_input_grad[0] else None)
        ctx.x1, ctx.y1, ctx.y_matrix = x.ndim == 1, y.ndim == 1, y.ndim == 2

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        if grad.dtype.kind == "c":  # complex: the conjugate transposes (torch's convention, see ops/complex.py)
            x, y = (None if x is None else np.conj(x)), (None if y is None else np.conj(y))
        g = grad  # put the removed vector dims back: g becomes (..., m, n)
        if ctx.y1:
            g = g[..., None]
        if ctx.x1:
            g = np.expand_dims(g, -2)
        gx = gy = None
        if y is not None:
            ye = y[:, None] if ctx.y1 else y
            gx = gemm.matmul(g, np.swapaxes(ye, -1, -2))
            if ctx.x1:
                gx = gx[..., 0, :]
        if x is not None:
            xe = x[None, :] if ctx.x1 else x
            if ctx.y_matrix and xe.ndim > 2:  # sum over the batch inside one GEMM
                k = xe.shape[-1]
                gy = gemm.matmul(xe.reshape(-1, k).T, g.reshape(-1, g.shape[-1]))
            else:
                gy = gemm.matmul(np.swapaxes(xe, -1, -2), g)
            if ctx.y1:
                gy = gy[..., 0]
        return gx, gy


def matmul(a, b) -> Tensor:
    """The matrix product with torch's rules for 1-d operands and batch broadcasting (``a @ b``, torch.matmul)."""
    a, b = binary_operands(a, b)
    sa, sb = a.data.shape, b.data.shape
    if not sa or not sb:
        raise ShapeError(f"matmul: both operands need at least 1 dim, got {shape_str(sa)} and {shape_str(sb)}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise ShapeError(
            f"matmul: shapes {shape_str(sa)} and {shape_str(sb)} cannot be multiplied ({ka} != {kb} in the inner dim)"
        )
    return MatMul.apply(a, b)


def mm(a, b) -> Tensor:
    """The product of two matrices (torch.mm)."""
    if a.data.ndim != 2 or b.data.ndim != 2:
        raise ShapeError(f"mm: expects two matrices, got {shape_str(a.shape)} and {shape_str(b.shape)}")
    return matmul(a, b)


def bmm(a, b) -> Tensor:
    """Batched matrix product of two 3-d tensors: (b, n, k) @ (b, k, m) -> (b, n, m) (torch.bmm)."""
    if a.data.ndim != 3 or b.data.ndim != 3:
        raise ShapeError(f"bmm: expects two 3-d tensors, got {shape_str(a.shape)} and {shape_str(b.shape)}")
    return matmul(a, b)


def dot(a, b) -> Tensor:
    """The inner product of two 1-d tensors (torch.dot)."""
    if a.data.ndim != 1 or b.data.ndim != 1:
        raise ShapeError(f"dot: expects two 1-d tensors, got {shape_str(a.shape)} and {shape_str(b.shape)}")
    return matmul(a, b)


def outer(a, b) -> Tensor:
    """The outer product of two 1-d tensors: y[i, j] = a[i] b[j] (torch.outer)."""
    return unsqueeze(a, 1) * unsqueeze(b, 0)


# -- einsum ------------------------------------------------------------------------------------------
def _parse_einsum(equation: str, shapes) -> tuple[list[str], str]:
    """Explicit subscripts for every operand and the output, with '...' spelled out in letters."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ShapeError(f"einsum: {equation!r} names {len(ins)} operands but got {len(shapes)}")
    used = set(eq)
    spare = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in used]
    ell_dims = max((len(s) - (len(sub) - 3) for sub, s in zip(ins, shapes) if "..." in sub), default=0)
    ell = "".join(spare[:ell_dims])
    subs = []
    for sub, s in zip(ins, shapes):
        if "..." in sub:
            n = len(s) - (len(sub) - 3)
            sub = sub.replace("...", ell[ell_dims - n:] if n else "")
        if len(sub) != len(s):
            raise ShapeError(f"einsum: subscripts {sub!r} do not match an operand of shape {shape_str(s)}")
        subs.append(sub)
    if arrow:
        out = rhs.replace("...", ell)
    else:  # implicit mode: letters seen once, in alphabetical order, after the ellipsis dims
        letters = "".join(subs)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    return subs, out


class Einsum(Function):
    """Z = einsum(subs -> out, X_1, ..., X_n)
    dL/dX_k = einsum(out, subs of the others -> subs_k, dL/dZ, X_others)
    (letters of X_k that appear nowhere else are broadcast back)."""

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, *xs, subs, out):
        ctx.save_for_backward(*xs)
        ctx.subs, ctx.out = subs, out
        return _einsum(",".join(subs) + "->" + out, *xs, optimize=len(xs) > 2)

    @staticmethod
    def backward(ctx, grad):
        xs = ctx.saved_tensors
        grads = []
        for k, (x, sub) in enumerate(zip(xs, ctx.subs)):
            if not ctx.needs_input_grad[k]:
                grads.append(None)
                continue
            uniq = "".join(dict.fromkeys(sub))  # a letter repeated in one operand is a diagonal
            size = dict(zip(sub, x.shape))
            others = [(s, o) for j, (o, s) in enumerate(zip(xs, ctx.subs)) if j != k]
            known = set(ctx.out).union(*(set(s) for s, _ in others))
            target = "".join(c for c in uniq if c in known)
            spec = ",".join([ctx.out] + [s for s, _ in others]) + "->" + target
            g = _einsum(spec, grad, *[o for _, o in others], optimize=len(others) > 1)
            if target != uniq:  # letters summed away in forward: every position got the same gradient
                g = np.broadcast_to(g.reshape([size[c] if c in known else 1 for c in uniq]),
                                    [size[c] for c in uniq])
            if uniq != sub:  # write the gradient onto the diagonal (einsum's diagonal is a writeable view)
                full = np.zeros(x.shape, dtype=grad.dtype)
                np.einsum(sub + "->" + uniq, full)[...] = g
                g = full
            grads.append(g)
        return tuple(grads)


def _einsum(spec: str, *arrays, optimize: bool):
    """``np.einsum``; bfloat16/float16 operands (NumPy has no einsum for bfloat16) are summed in float32
    and the result rounded back to the first operand's dtype, as torch accumulates."""
    low = arrays[0].dtype
    if low.itemsize != 2 or low.kind not in "fV":
        return np.einsum(spec, *arrays, optimize=optimize)
    wide = [a.astype(np.float32) if a.dtype == low else a for a in arrays]
    return np.einsum(spec, *wide, optimize=optimize).astype(low)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over the operands by ``equation``, e.g. ``einsum('bij,bjk->bik', a, b)`` (torch.einsum)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    subs, out = _parse_einsum(equation, [t.shape for t in operands])
    return Einsum.apply(*_promote_all(list(operands)), subs=subs, out=out)
