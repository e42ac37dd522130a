"""Matrix products on our threads: ``matmul(a, b)`` is ``np.matmul`` with a large product cut in blocks.

Under the threading policy (``threads.py``) NumPy's BLAS runs one thread inside our calls, so that its
workers do not spin against our kernels' threads. A product of at least ``policy.gemm_split_flops``
is cut into ``k`` blocks of its output, one per thread, and ``threads.run_split`` runs them at once;
each block is one single-threaded BLAS call (NumPy releases the GIL inside it):

    2-D  (M, K) @ (K, N):        rows of a when M >= N, else columns of b     out[r0:r1] / out[:, c0:c1]
    batched, same batch shape:   the first batch axis at least k long         out[..., s0:s1, :, :]
    batched @ 2-D (a Linear):    the same axis of a                           out[..., s0:s1, :, :]

Every block writes its own slice of ``out``, and each output element is the same K-long dot product
BLAS would compute unsplit. Anything else (CuPy arrays, integers, broadcast batches, small products)
is one ``np.matmul``; when OpenBLAS would use several threads for it (``_blas_may_thread``), that
call runs inside ``threads.blas_enter``/``blas_exit``: one thread, and the user's setting put back.

With MKL in use (``threads.mkl()``, ``policy.blas_lib``), every product above, whole or a block, calls
MKL's sequential GEMM by address instead of NumPy's (``_product``; ``backend/cblas.py``): a batch of
matrices is one compiled call instead of NumPy's per-matrix overhead. What BLAS cannot read in place
(broadcast batches, odd strides, integers, CuPy arrays) stays ``np.matmul``.

A vector times a matrix (M = 1: batch-1 decoding) is bound by reading the matrix from memory, not by
its flops, so it is split when the matrix has ``policy.gemv_split_bytes``, and along its longer side:
the columns when N >= K, else the reduction (two partial products, then one add).
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.backend import threads
from neural_arch.backend.threads import policy

_FLOAT = (np.dtype(np.float32), np.dtype(np.float64))

# OpenBLAS runs a call on one thread below these sizes whatever its thread count (interface/gemv.c:
# m n < 2304 * GEMM_MULTITHREAD_THRESHOLD; interface/gemm.c: m n k <= 65536 * the same, which is 4):
# such products need no scope around them.
_GEMV_SERIAL = 2304 * 4
_GEMM_SERIAL = 65536 * 4


def matmul(a, b, out=None):
    """``np.matmul(a, b)``; split over the threads when it is large (see the module doc). ``out``:
    an array of the product's shape and dtype to write into (any layout, e.g. the transpose of a
    C-ordered one), as ``np.matmul``'s."""
    if a.dtype.itemsize == 2 or b.dtype.itemsize == 2:  # (one test for float16/bfloat16 on the hot path)
        if a.dtype.kind in "fV" and b.dtype.kind in "fV":
            return _half_matmul(a, b, out)
    if b.ndim == 2 and a.ndim > 2 and type(a) is np.ndarray and a.flags.c_contiguous and a.size and (
            a.shape[-1] == b.shape[0]) and (out is None or (type(out) is np.ndarray and out.flags.c_contiguous)):
        return _folded(a, b, out)
    n = b.shape[-1] if b.ndim else 0
    size = a.size * n  # m K n (times the batch): at most half the flops, the bytes of a vector's matrix
    if 2 * size < policy.gemm_split_flops and size * a.itemsize < policy.gemv_split_bytes:
        if size < _GEMV_SERIAL or not _blas_may_thread(a, b):
            return _product(a, b, out)  # most products: decided in well under a microsecond
        jobs = None
    else:
        jobs = _blocks(a, b, out)
    if jobs is None:
        threads.blas_enter()
        try:
            return _product(a, b, out)
        finally:
            threads.blas_exit()
    result, parts, partial_products = jobs
    threads.run_split(_product, parts, products=True)
    if partial_products:
        return result.sum(axis=0, out=out)
    return result


def _folded(a, b, out):
    """A stack of matrices (..., m, k) times one matrix (k, n) as ONE product (... m, k) @ (k, n), as torch's
    linear does: NumPy's matmul runs a stack as one BLAS call per matrix, and with the short sequences
    of serving (m = tokens of a text) those calls are several times slower than the product of the rows
    stacked (BENCHMARKS.md, the serve_forward section). Every output row is the same dot products."""
    rows = a.reshape(-1, a.shape[-1])  # a view: a is C-contiguous (and so is out, when given)
    shape = a.shape[:-1] + (b.shape[-1],)
    if out is None:
        return matmul(rows, b).reshape(shape)
    if out.shape != shape:
        return np.matmul(a, b, out=out)  # NumPy's own error message, naming the shapes
    matmul(rows, b, out=out.reshape(rows.shape[0], b.shape[-1]))
    return out


def _half_matmul(a, b, out=None):
    """A product with float16/bfloat16 operands (either may be float32): BLAS has no such GEMM (NumPy's
    float16 loop is ~10x slower than float32's, ml_dtypes' bfloat16 one returns float32), so each half
    operand is widened to float32 whole, multiplied there (float32 accumulation, as torch's CPU kernels)
    and the result rounded to the operands' dtype. bfloat16 goes through the bit kernels of
    ``kernels/half.py`` (ml_dtypes' ``astype`` gives the same bits; on a loaded machine the two timed
    within noise of each other). Widening the weight a tile of rows at a time instead was slower at every
    shape measured, decoding (M = 1) included (``python -m benchmarks half_matmul``, BENCHMARKS.md).

    With MKL in use, two operands of one half dtype go to its GEMM for them instead (``_half_by_mkl``):
    it reads the 16-bit operands, accumulates in float32 and writes float32, with no widened copies."""
    from neural_arch.backend.kernels.half import to_float32, to_half  # noqa: PLC0415 - kernels import this module

    dtype = a.dtype if a.dtype == b.dtype else np.promote_types(a.dtype, b.dtype)
    wide = _half_by_mkl(a, b) if a.dtype == b.dtype else None
    if wide is None:
        wide = matmul(a if a.dtype in _FLOAT else to_float32(a), b if b.dtype in _FLOAT else to_float32(b))
    if out is None:
        return to_half(wide, dtype) if wide.dtype != dtype else wide
    out[...] = wide
    return out


def _half_by_mkl(a, b):
    """a @ b in float32 by MKL's bfloat16/float16 GEMM (a and b of that one dtype), split over our threads
    as a float32 product is; None when MKL is not in use or cannot read them in place."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or not (_mkl or (_mkl is None and _mkl_in_use())):
        return None
    addr = _mkl.address(a.dtype)
    if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:  # a Linear: one product of the rows stacked
        wide = _half_by_mkl(a.reshape(-1, a.shape[-1]), b)
        return None if wide is None else wide.reshape(a.shape[:-1] + b.shape[-1:])
    if not addr or a.ndim != b.ndim or not 1 < a.ndim < 5 or a.shape[-1] != b.shape[-2]:
        return None
    a16, b16 = a.view(np.uint16), b.view(np.uint16)  # numba has no bfloat16: MKL reads the bits
    wide = np.empty(a.shape[:-1] + b.shape[-1:], np.float32)
    jobs = _half_blocks(a16, b16, wide, addr)
    if len(jobs) > 1:
        threads.run_split(_cblas.product, jobs)  # (its result ignored: _half_blocks checked the layouts)
        return wide
    return wide if _cblas.product(a16, b16, wide, addr) else None


def _half_blocks(a, b, out, addr) -> list:
    """[(a_i, b_i, out_i, addr), ...]: a large product cut as ``_blocks`` cuts one (the first batch axis,
    else rows of a or columns of b); one block when small, or when BLAS cannot read it in place."""
    k = policy.num_threads
    m, inner, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if k < 2 or policy.blas != "ours" or 2 * out.size * inner < policy.gemm_split_flops or not _cblas.product(
            a[..., :0, :], b, out[..., :0, :], addr):  # (an empty block: checks the layouts, writes nothing)
        return [(a, b, out, addr)]
    if a.ndim > 2:
        if a.shape[0] < k or a.shape[:-2] != b.shape[:-2]:
            return [(a, b, out, addr)]
        cuts = [slice(a.shape[0] * i // k, a.shape[0] * (i + 1) // k) for i in range(k)]
        return [(a[c], b[c], out[c], addr) for c in cuts]
    if m >= n:
        cuts = [slice(m * i // k, m * (i + 1) // k) for i in range(k)]
        return [(a[c], b, out[c], addr) for c in cuts]
    cuts = [slice(n * i // k, n * (i + 1) // k) for i in range(k)]
    return [(a, b[:, c], out[:, c], addr) for c in cuts]


def _blas_may_thread(a, b) -> bool:
    """Whether OpenBLAS could run one of the products of ``a @ b`` on several threads (see above)."""
    if a.ndim < 2 or b.ndim < 2:
        return True  # a vector: ?gemv, judged by the matrix (the caller checked its size)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if m == 1 or n == 1:
        return k * max(m, n) >= _GEMV_SERIAL
    return m * k * n > _GEMM_SERIAL


def column_major(a) -> bool:
    """A NumPy matrix stored column-major and not row-major (nn.Linear's weights): its transpose is a
    row-major operand, and what is computed for it (dL/dW, optimizer state) should share that layout."""
    return type(a) is np.ndarray and a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous


def _product(a, b, out=None):
    """``np.matmul(a, b, out=out)``, by MKL's GEMM (:func:`cblas.product`) when MKL is in use and can
    read the arrays in place. The smallest products stay NumPy's: its call costs less than ours."""
    if a.ndim == b.ndim and 1 < a.ndim < 5 and a.size * b.shape[-1] >= _MKL_MIN_SIZE and (
            _mkl or (_mkl is None and _mkl_in_use())) and type(a) is np.ndarray and type(b) is np.ndarray:
        addr = _mkl_gemm.get(a.dtype, 0) if a.dtype == b.dtype else 0
        target = np.empty(a.shape[:-1] + b.shape[-1:], a.dtype) if out is None and addr else out
        if addr and (type(target) is np.ndarray and target.dtype == a.dtype and target.ndim == a.ndim
                     and _cblas.product(a, b, target, addr)):
            return target
    return np.matmul(a, b, out=out)


def matmul_here(a, b, out=None):
    """``np.matmul(a, b)`` as one product on the calling thread, never split: MKL's sequential GEMM when
    MKL is in use, else NumPy's. For code that already runs one job per thread (conv's per-thread
    pipelines, inside ``threads.run_split``, where NumPy's BLAS is held to one thread)."""
    return _product(a, b, out)


def reads_in_place(a, n: int) -> bool:
    """Whether ``matmul(a, b)`` with ``b`` (..., k, n) of ``a``'s batch shape hands the matrices of strided
    views (heads transposed out of (B, T, heads, d)) to BLAS as they are: MKL in use and the product
    above NumPy's share. Else NumPy's stacked matmul runs them, far slower than on contiguous copies."""
    return type(a) is np.ndarray and a.ndim > 2 and a.size * n >= _MKL_MIN_SIZE and mkl_in_use()


def mkl_in_use() -> bool:
    """Whether our products run on MKL (decided at the first product; see ``threads.mkl``)."""
    return bool(_mkl) if _mkl is not None else _mkl_in_use()


_mkl = None  # threads.mkl() once decided (False: not in use); _cblas: backend/cblas.py, loaded with it
_cblas = None
_mkl_gemm = {}  # float32 / float64 -> the address of MKL's GEMM for it
# below m k n (times the batch) = 2^19 a product is one NumPy call: ours costs more per call there (checks,
# numba's dispatch)
_MKL_MIN_SIZE = 1 << 19


def _mkl_in_use() -> bool:
    global _mkl, _cblas
    lib = threads.mkl()
    if lib is not None:
        from neural_arch.backend import cblas  # noqa: PLC0415 - numba, compiled only when MKL is used

        _cblas = cblas
        _mkl_gemm.update({dtype: lib.address(dtype) for dtype in _FLOAT})
    _mkl = lib or False
    return bool(lib)


def _blocks(a, b, out=None):
    """(result, [(a_i, b_i, out_i), ...], partial_products) for a product worth splitting, else None.
    With ``partial_products`` result holds one partial product per block along its first axis;
    else it is ``out`` (allocated when None)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim < 2 or b.ndim < 2:
        return None
    m, inner, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    batch = math.prod(batch_a) if batch_a else 1
    if m == 1 and batch == 1:  # a vector times a matrix: memory-bound, judged by the matrix's bytes
        if inner * n * a.itemsize < policy.gemv_split_bytes:
            return None
    elif 2 * m * n * inner * batch < policy.gemm_split_flops:
        return None
    if batch_b and batch_b != batch_a:
        return None  # broadcasting batches: rare, left to NumPy
    if a.dtype != b.dtype or a.dtype not in _FLOAT or inner != b.shape[-2] or not threads.blas_is_ours():
        return None
    k = policy.num_threads
    if k < 2:
        return None
    shape = (*batch_a, m, n)
    if out is None:
        out = np.empty(shape, a.dtype)
    elif (type(out) is not np.ndarray or out.shape != shape or out.dtype != a.dtype
          or (out.ndim > 2 and not out.flags.c_contiguous)):
        return None  # np.matmul checks it (and says what is wrong), or its blocks would not be views
    if batch_a:  # (2-D products, most of them, skip this bookkeeping: it runs on every Linear)
        axis = next((i for i, size in enumerate(batch_a) if size >= k), None)
        if axis is not None:  # cut the first batch axis with a block per thread (b's too, when it has one)
            s, lead = batch_a[axis], (slice(None),) * axis
            cuts = [lead + (slice(s * i // k, s * (i + 1) // k),) for i in range(k)]
            return out, [(a[c], b[c] if batch_b else b, out[c]) for c in cuts], False
        if batch > 1:
            return None
        # views: batch dims are 1s (out: already 2-D, or C-contiguous)
        a2, b2, out2 = a.reshape(m, inner), b.reshape(inner, n), out if out.ndim == 2 else out.reshape(m, n)
    else:
        a2, b2, out2 = a, b, out
    if m == 1 and inner > n:  # partial products over slices of the reduction, summed by matmul()
        partial = np.empty((k,) + out.shape, a.dtype)
        cuts = [(inner * i // k, inner * (i + 1) // k) for i in range(k)]
        return partial, [(a2[:, lo:hi], b2[lo:hi], partial[i].reshape(1, n)) for i, (lo, hi) in enumerate(cuts)], True
    if m >= n:
        cuts = [(m * i // k, m * (i + 1) // k) for i in range(k)]
        return out, [(a2[lo:hi], b2, out2[lo:hi]) for lo, hi in cuts], False
    cuts = [(n * i // k, n * (i + 1) // k) for i in range(k)]
    return out, [(a2, b2[:, lo:hi], out2[:, lo:hi]) for lo, hi in cuts], False
