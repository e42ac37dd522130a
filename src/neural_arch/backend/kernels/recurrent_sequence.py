"""An LSTM layer's whole time loop in one numba call: per step, BLAS's ``cblas_sgemm`` called by its
address (as ``backend/spin.py``'s helpers do) and the cell's arithmetic of ``recurrent.py``.

Why: per time step the layer does one small product (batch x hidden @ hidden x 4 hidden) and one
pass of elementwise work. Run from Python, each step also pays for the loop, NumPy's matmul
dispatch and the kernel call; over 35 steps x 2 layers x (forward + backward) that overhead was a
measurable part of the step (BENCHMARKS.md). Here the loop, the products and the cell kernels run
without going back to Python (and without the GIL).

The arithmetic is the same as the Python loop in ``ops/recurrent.py`` (the readable path, which
runs for float64, without numba, or when BLAS's address is unknown): the same GEMM of the same
BLAS on the same operands, then the same row helpers as ``lstm_step_forward`` /
``lstm_step_backward``. float32 only, like the cell kernels. Every array is C-contiguous; the
caller (``recurrent.lstm_sequence_forward`` / ``_backward``) sees to it.

Imported on first use only: it compiles (or loads) numba code and reads ``spin``'s intrinsics.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from neural_arch.backend.kernels._jit import FAST, _jit, inline
from neural_arch.backend.kernels.recurrent import lstm_rows_backward, lstm_rows_forward
from neural_arch.backend.spin import _NO_TRANS, _sgemm_at

_ROW_MAJOR, _PACKED = 101, 151  # CBLAS's codes (CblasPacked: MKL's packed-operand extension)


@intrinsic
def _sgemm_compute_at(typingctx, addr, m, n, k, a, lda, b, ldb, c, ldc):
    """MKL's ILP64 ``cblas_sgemm_compute(RowMajor, NoTrans, Packed, m, n, k, a, lda, b, ldb, 0, c, ldc)`` at
    ``addr``: c = a @ b with b packed once beforehand (``recurrent.packed_right``)."""

    def codegen(context, builder, signature, args):
        i32, i64, f, ptr = ir.IntType(32), ir.IntType(64), ir.FloatType(), ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, ptr, i64, ptr, i64, f, ptr, i64])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        _, m_, n_, k_, a_, lda_, b_, ldb_, c_, ldc_ = args
        builder.call(fn, [ir.Constant(i32, _ROW_MAJOR), ir.Constant(i32, _NO_TRANS), ir.Constant(i32, _PACKED),
                          m_, n_, k_, builder.inttoptr(a_, ptr), lda_, builder.inttoptr(b_, ptr), ldb_,
                          ir.Constant(f, 0.0), builder.inttoptr(c_, ptr), ldc_])
        return context.get_dummy_value()

    return types.void(addr, m, n, k, a, lda, b, ldb, c, ldc), codegen


@inline(FAST)
def _product(addr, compute, m, n, k, a, lda, b, b_packed, ldb, c, ldc):
    """c = a @ b (row-major float32, by address): MKL's packed GEMM on ``b_packed`` when ``compute`` is
    its address, else the plain GEMM at ``addr`` on ``b``."""
    if compute:
        _sgemm_compute_at(compute, m, n, k, a, lda, b_packed, ldb, c, ldc)
    else:
        _sgemm_at(addr, _NO_TRANS, _NO_TRANS, m, n, k, a, lda, b, ldb, c, ldc)


@inline(FAST)
def _copy_rows(src, dst, rows):
    cols = src.shape[1]
    for b in range(rows):
        for j in range(cols):
            dst[b, j] = src[b, j]


def _lstm_forward_loop(addr, compute, w_hh_t_packed, xg, w_hh_t, w_hr_t, h, c, hg, gates, tanh_c, c_prev, h_prev, rs, ys, active,
                       reverse):
    """The forward steps of ``ops.recurrent.LSTMLayer`` (see there for the arrays): at step t the
    first ``active[t]`` rows move; ``w_hh_t`` (P, 4H) and ``w_hr_t`` (H, P; (0, 0) without a projection)
    are row-major copies of the transposed weights. ``compute`` (0: none) and ``w_hh_t_packed``: MKL's
    packed GEMM and the address of ``w_hh_t`` packed for it (every step then has all rows). ``h_prev`` may be a strided view (backward reads it
    beside x); ``h`` and ``c``, the state, are C-contiguous: the product reads ``h``."""
    T = xg.shape[0]
    P = h.shape[1]
    H = c.shape[1]
    G = w_hh_t.shape[1]
    projected = w_hr_t.shape[0] > 0
    for s in range(T):
        t = T - 1 - s if reverse else s
        n = active[t]
        if n <= 0:
            continue
        hp, cp, r, y = h_prev[t], c_prev[t], rs[t], ys[t]
        _copy_rows(h, hp, n)
        _copy_rows(c, cp, n)
        _product(addr, compute, n, G, P, h.ctypes.data, P, w_hh_t.ctypes.data, w_hh_t_packed, G, hg.ctypes.data, G)
        lstm_rows_forward(xg[t], hg, cp, gates[t], tanh_c[t], c, r, n)
        if projected:
            _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, P, H, r.ctypes.data, H, w_hr_t.ctypes.data, P, y.ctypes.data, P)
        _copy_rows(y, h, n)


def _lstm_backward_loop(addr, compute, w_hh_packed, gy, w_hh, w_hr, dh, dc, dc_next, dr, gates, tanh_c, c_prev, dgates, dhs, active,
                        reverse):
    """The backward steps of ``ops.recurrent.LSTMLayer``: ``dh`` and ``dc`` come in holding the gradients
    of h_n and c_n and leave holding those of h0 and c0; ``dgates`` and (with a projection) ``dhs``, the
    dL/dh_t of every step, are filled for the weight gradients. ``compute``, ``w_hh_packed``: as forward's. ``w_hr``: (0, 0) without a projection."""
    T = gy.shape[0]
    P = dh.shape[1]
    H = dc.shape[1]
    G = w_hh.shape[0]
    projected = w_hr.shape[0] > 0
    for s in range(T):
        t = s if reverse else T - 1 - s
        n = active[t]
        if n <= 0:
            continue
        g = gy[t]
        d = dhs[t] if projected else dr
        for b in range(n):
            for j in range(P):
                d[b, j] = dh[b, j] + g[b, j]
        if projected:
            _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, H, P, d.ctypes.data, P, w_hr.ctypes.data, H, dr.ctypes.data, H)
        dg = dgates[t]
        lstm_rows_backward(dr, dc, gates[t], c_prev[t], tanh_c[t], dg, dc_next, n)
        _copy_rows(dc_next, dc, n)
        _product(addr, compute, n, P, G, dg.ctypes.data, G, w_hh.ctypes.data, w_hh_packed, P, dh.ctypes.data, P)


lstm_forward_loop = _jit(_lstm_forward_loop, FAST)
lstm_backward_loop = _jit(_lstm_backward_loop, FAST)
