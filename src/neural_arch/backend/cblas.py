"""Calling a BLAS's ILP64 ``cblas_?gemm`` by address from numba code, without NumPy in between.

``_sgemm_at`` / ``_dgemm_at`` compile to one indirect call of ``cblas_?gemm(RowMajor, ta, tb, m, n, k, 1, a,
lda, b, ldb, 0, c, ldc)`` with 64-bit integers: the polling helpers (``backend/spin.py``) run a block of a
split product that way, and :func:`product` runs a whole one (a batch of them: attention's
``(B, H, T, T) @ (B, H, T, D)`` is one call here, where ``np.matmul`` pays its overhead per matrix).
MKL's half GEMMs (``cblas_gemm_bf16bf16f32``) have ``sgemm``'s signature with 16-bit operands, so
``_sgemm_at`` calls them too; their operands come in as ``uint16`` views (numba has no bfloat16).

A matrix BLAS can read in place is one whose rows or columns are contiguous with a leading dimension
that does not overlap (:func:`_layout`); anything else (broadcast or odd strides) makes :func:`product`
return False, and the caller uses ``np.matmul``. Operands may be read-only (a sum's broadcast
gradient): the signatures take read-only arrays, which writeable ones convert to.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


def _gemm_at(float_type, beta: float = 0.0):
    """An intrinsic calling ILP64 ``cblas_?gemm(RowMajor, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)``
    at the address ``addr`` (alpha and beta: float, double: ``float_type``; pointers as integers): beta = 0
    writes c = a @ b, beta = 1 adds, c += a @ b."""

    @intrinsic
    def call(typingctx, addr, ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
        def codegen(context, builder, signature, args):
            i32, i64, f, ptr = ir.IntType(32), ir.IntType(64), float_type(), ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, f, ptr, i64, ptr, i64, f, ptr, i64])
            fn = builder.inttoptr(args[0], fnty.as_pointer())
            _, ta_, tb_, m_, n_, k_, a_, lda_, b_, ldb_, c_, ldc_ = args
            builder.call(fn, [ir.Constant(i32, 101), builder.trunc(ta_, i32), builder.trunc(tb_, i32), m_, n_, k_,
                              ir.Constant(f, 1.0), builder.inttoptr(a_, ptr), lda_, builder.inttoptr(b_, ptr), ldb_,
                              ir.Constant(f, beta), builder.inttoptr(c_, ptr), ldc_])
            return context.get_dummy_value()

        return types.void(addr, ta, tb, m, n, k, a, lda, b, ldb, c, ldc), codegen

    return call


_sgemm_at, _dgemm_at = _gemm_at(ir.FloatType), _gemm_at(ir.DoubleType)
_sgemm_add_at = _gemm_at(ir.FloatType, 1.0)
_NO_TRANS, _TRANS = 111, 112  # CBLAS's codes


@njit(nogil=True, cache=True)
def _layout(rows, cols, row_stride, col_stride, item):
    """(transpose code, leading dimension) of a rows x cols matrix with these byte strides, if BLAS can
    read it in place, else (0, 0)."""
    if col_stride == item and row_stride % item == 0 and row_stride >= max(1, cols) * item:
        return _NO_TRANS, row_stride // item
    if row_stride == item and col_stride % item == 0 and col_stride >= max(1, rows) * item:
        return _TRANS, col_stride // item
    return 0, 0


@njit(nogil=True, cache=True)
def _operand(x, item):
    """(transpose code, leading dimension) of a 2-D array BLAS can read in place, else (0, 0)."""
    return _layout(x.shape[0], x.shape[1], x.strides[0], x.strides[1], item)


@njit(nogil=True, cache=True)
def _batch_offset(x, index):
    """The byte offset of matrix ``index`` (C order over the batch axes) of the stack ``x``."""
    offset = 0
    for axis in range(x.ndim - 3, -1, -1):
        offset += (index % x.shape[axis]) * x.strides[axis]
        index //= x.shape[axis]
    return offset


def _signatures():
    """(a, b, out, addr) for float32 and float64 products and 16-bit operands into float32, 2-D to 4-D."""
    sigs = []
    for operand, result in ((types.float32, types.float32), (types.float64, types.float64),
                            (types.uint16, types.float32)):
        for ndim in (2, 3, 4):
            read = types.Array(operand, ndim, "A", readonly=True)
            sigs.append(types.boolean(read, read, types.Array(result, ndim, "A"), types.int64))
    return sigs


@njit(_signatures(), nogil=True, cache=True)
def product(a, b, out, addr):
    """out = a @ b by the GEMM at ``addr`` (one call per matrix of a batch; a, b, out of one ndim with
    the same batch shape). False, with nothing written, when a shape does not match or BLAS cannot read
    a matrix in place: the caller then uses ``np.matmul``."""
    nd = a.ndim
    m, k, n = a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]
    if b.shape[nd - 2] != k or out.shape[nd - 2] != m or out.shape[nd - 1] != n or k == 0 or addr == 0:
        return False  # (k == 0: the product is zeros, which NumPy writes)
    batch = 1
    for axis in range(nd - 2):
        if a.shape[axis] != out.shape[axis] or b.shape[axis] != out.shape[axis]:
            return False
        batch *= out.shape[axis]
    item = a.itemsize
    ta, lda = _layout(m, k, a.strides[nd - 2], a.strides[nd - 1], item)
    tb, ldb = _layout(k, n, b.strides[nd - 2], b.strides[nd - 1], item)
    tc, ldc = _layout(m, n, out.strides[nd - 2], out.strides[nd - 1], out.itemsize)
    if ta == 0 or tb == 0 or tc == 0:
        return False
    if m == 0 or n == 0 or batch == 0:
        return True
    a0, b0, c0 = a.ctypes.data, b.ctypes.data, out.ctypes.data
    for i in range(batch):
        pa, pb, pc = a0 + _batch_offset(a, i), b0 + _batch_offset(b, i), c0 + _batch_offset(out, i)
        if tc == _TRANS:  # a column-major out (nn.Linear's dL/dW): out^T = b^T a^T, row-major
            if item == 8:
                _dgemm_at(addr, _NO_TRANS + _TRANS - tb, _NO_TRANS + _TRANS - ta, n, m, k, pb, ldb, pa, lda, pc, ldc)
            else:
                _sgemm_at(addr, _NO_TRANS + _TRANS - tb, _NO_TRANS + _TRANS - ta, n, m, k, pb, ldb, pa, lda, pc, ldc)
        elif item == 8:
            _dgemm_at(addr, ta, tb, m, n, k, pa, lda, pb, ldb, pc, ldc)
        else:
            _sgemm_at(addr, ta, tb, m, n, k, pa, lda, pb, ldb, pc, ldc)
    return True
