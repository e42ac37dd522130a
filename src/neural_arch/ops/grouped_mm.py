"""``F.grouped_mm``: one matrix product per group, the Mixture-of-Experts layout (each expert's tokens are a
contiguous run of rows, ``offs`` marks where each run ends). torch runs it on CUDA with grouped GEMM kernels
and on the CPU with a loop over groups; here too, one BLAS product per group.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import DTypeError, ShapeError

__all__ = ["grouped_mm"]


def _runs(offs):
    """(group, first row, end row) for each group of ``offs`` (group g ends before row offs[g])."""
    start = 0
    for g, end in enumerate(offs):
        yield g, start, int(end)
        start = int(end)


class GroupedMM(Function):
    """2-D a (M, K), 3-D b (G, K, N), offs (G,):  y[r] = a[r] @ b[g]  for the rows r of group g
    (offs[g-1] <= r < offs[g]; rows past offs[-1] are 0).  3-D a (G, M, K), no offs:  y[g] = a[g] @ b[g].

    da[r] = dy[r] @ b[g]^T        db[g] = sum over the rows r of group g of a[r]^T dy[r]  (a[g]^T @ dy[g] in 3-D)
    """

    half = "float32"

    @staticmethod
    def forward(ctx, a, b, offs=None):
        ctx.save_for_backward(a, b)
        ctx.offs = offs
        if offs is None:
            return np.matmul(a, b)
        out = np.zeros((a.shape[0], b.shape[2]), dtype=np.result_type(a, b))
        for g, start, end in _runs(offs):
            out[start:end] = a[start:end] @ b[g]
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        if ctx.offs is None:
            ga = np.matmul(grad, np.swapaxes(b, -1, -2)) if ctx.needs_input_grad[0] else None
            gb = np.matmul(np.swapaxes(a, -1, -2), grad) if ctx.needs_input_grad[1] else None
            return ga, gb
        ga, gb = np.zeros_like(a), np.zeros_like(b)
        for g, start, end in _runs(ctx.offs):
            ga[start:end] = grad[start:end] @ b[g].T
            gb[g] = a[start:end].T @ grad[start:end]
        return ga, gb


def grouped_mm(mat_a, mat_b, *, offs=None, bias=None, out_dtype=None) -> Tensor:
    """Grouped matrix product, torch's ``F.grouped_mm``: ``mat_a`` (M, K) with ``mat_b`` (G, K, N) and ``offs``
    (G increasing row ends; group g's rows are ``offs[g-1]:offs[g]``) gives (M, N), each group's rows times its
    own matrix; ``mat_a`` (G, M, K) with ``mat_b`` (G, K, N) and no ``offs`` gives (G, M, N). The 2-D x 2-D and
    3-D x 2-D layouts (weight-gradient products) and ``bias`` are not implemented here; the output has the
    inputs' dtype (``out_dtype`` may only repeat it). Unlike torch's CPU kernel, any dtype and stride works."""
    if bias is not None:
        raise ShapeError("grouped_mm: bias is not implemented; add it to the output of each group instead")
    if out_dtype is not None and np.dtype(out_dtype) != mat_a.dtype:
        raise DTypeError(f"grouped_mm: out_dtype {out_dtype} differs from the inputs' {mat_a.dtype}; cast the output")
    if mat_a.ndim == 3 and mat_b.ndim == 3 and offs is None:
        if mat_a.shape[0] != mat_b.shape[0] or mat_a.shape[2] != mat_b.shape[1]:
            raise ShapeError(f"grouped_mm: expected a (G, M, K) and b (G, K, N), got {tuple(mat_a.shape)} and "
                             f"{tuple(mat_b.shape)}")
        return GroupedMM.apply(mat_a, mat_b)
    if mat_a.ndim == 2 and mat_b.ndim == 3 and offs is not None:
        ends = np.asarray(offs.numpy() if isinstance(offs, Tensor) else offs).astype(np.int64).reshape(-1)
        if (len(ends) != mat_b.shape[0] or mat_a.shape[1] != mat_b.shape[1] or np.any(np.diff(ends) < 0)
                or (len(ends) and (ends[0] < 0 or ends[-1] > mat_a.shape[0]))):
            raise ShapeError(f"grouped_mm: expected a (M, K), b (G, K, N) and G increasing offs <= M, got "
                             f"{tuple(mat_a.shape)}, {tuple(mat_b.shape)} and offs {ends.tolist()}")
        return GroupedMM.apply(mat_a, mat_b, offs=tuple(ends.tolist()))
    raise ShapeError(f"grouped_mm: the layouts implemented are a (M, K) x b (G, K, N) with offs, and "
                     f"a (G, M, K) x b (G, K, N) without; got {tuple(mat_a.shape)} x {tuple(mat_b.shape)} with "
                     f"offs {'given' if offs is not None else 'None'}")
