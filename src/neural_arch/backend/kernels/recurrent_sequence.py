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
``lstm_step_backward``. float32 only, like the cell kernels; every array C-contiguous but ``h_prev``
(the caller, ``ops/recurrent.py``, sees to it; ``recurrent.sequence_gemm`` says when this runs).

With MKL for the loop (``threads.loop_mkl()``: any CPU, unless told "openblas"), the per-step products
use its pack-once GEMM: ``W_hh`` is packed into MKL's blocked layout once per call (``cblas_sgemm_pack``)
and each step runs ``cblas_sgemm_compute`` on it, where a plain GEMM re-packs it every step (oneDNN's LSTM, which torch
runs, packs once too). Any other BLAS: its plain ``cblas_sgemm``.

Imported on first use only: it compiles (or loads) numba code and reads ``spin``'s intrinsics.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from neural_arch.backend import threads
from neural_arch.backend.cblas import _NO_TRANS, _operand, _sgemm_add_at, _sgemm_at
from neural_arch.backend.kernels import _dispatch
from neural_arch.backend.kernels._jit import FAST, _jit, inline
from neural_arch.backend.kernels.recurrent import lstm_rows_backward, lstm_rows_forward

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


def _lstm_forward_loop(addr, compute, w_hh_t_packed, xg, w_hh_t, w_hr_t, h, c, hg, gates, tanh_c, c_prev, h_prev,
                       rs, ys, active, reverse):
    """The forward steps of ``ops.recurrent.LSTMLayer`` (see there for the arrays): at step t the
    first ``active[t]`` rows move; ``w_hh_t`` (P, 4H) and ``w_hr_t`` (H, P; (0, 0) without a projection)
    are row-major copies of the transposed weights. ``compute`` (0: none) and ``w_hh_t_packed``: MKL's
    packed GEMM and the address of ``w_hh_t`` packed for it. ``h_prev`` may be a strided view (backward
    reads it beside x); the state ``h`` and ``c`` is C-contiguous: the product reads ``h``."""
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
        _product(addr, compute, n, G, P, h.ctypes.data, P, w_hh_t.ctypes.data, w_hh_t_packed, G,
                 hg.ctypes.data, G)
        lstm_rows_forward(xg[t], hg, cp, gates[t], tanh_c[t], c, r, n)
        if projected:
            _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, P, H, r.ctypes.data, H, w_hr_t.ctypes.data, P,
                      y.ctypes.data, P)
        _copy_rows(y, h, n)


def _lstm_backward_loop(addr, compute, w_hh_packed, gy, w_hh, w_hr, dh, dc, dc_next, dr, gates, tanh_c, c_prev,
                        dgates, dhs, active, reverse):
    """The backward steps of ``ops.recurrent.LSTMLayer``: ``dh`` and ``dc`` come in holding the gradients
    of h_n and c_n and leave holding those of h0 and c0; ``dgates`` and (with a projection) ``dhs``, the
    dL/dh_t of every step, are filled for the weight gradients. ``compute``, ``w_hh_packed``: as forward's;
    ``w_hr``: (0, 0) without a projection."""
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
            _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, H, P, d.ctypes.data, P, w_hr.ctypes.data, H,
                      dr.ctypes.data, H)
        dg = dgates[t]
        lstm_rows_backward(dr, dc, gates[t], c_prev[t], tanh_c[t], dg, dc_next, n)
        _copy_rows(dc_next, dc, n)
        _product(addr, compute, n, P, G, dg.ctypes.data, G, w_hh.ctypes.data, w_hh_packed, P, dh.ctypes.data, P)


_forward_loop = _jit(_lstm_forward_loop, FAST)
_backward_loop = _jit(_lstm_backward_loop, FAST)


def lstm_sequence_forward(addr, xg, w_hh_t, w_hr_t, h, c, hg, gates, tanh_c, c_prev, h_prev, rs, ys, active,
                          reverse):
    """All forward steps of an LSTM layer-direction (``ops.recurrent.LSTMLayer.forward``'s loop), with
    ``addr`` from ``recurrent.sequence_gemm``. ``w_hr_t``: None without a projection; ``active``: int64 (T,)."""
    _dispatch.calls["lstm_sequence_forward"] += 1
    lstm_steps_forward(addr, packed_right(w_hh_t, h.shape[0], active), xg, w_hh_t, w_hr_t, h, c, hg, gates, tanh_c,
                       c_prev, h_prev, rs, ys, active, reverse)


def lstm_steps_forward(addr, packing, xg, w_hh_t, w_hr_t, h, c, hg, gates, tanh_c, c_prev, h_prev, rs, ys, active,
                       reverse):
    """``lstm_sequence_forward`` with ``packing = packed_right(w_hh_t, ...)`` made once by the caller: for a
    caller that runs a sequence's steps in several calls (a range of steps each, the state carried in ``h``
    and ``c``), as ``ops/recurrent_wave.py`` does."""
    compute, packed = packing
    _forward_loop(addr, compute, _address(packed), xg, w_hh_t, _NO_MATRIX if w_hr_t is None else w_hr_t, h, c,
                  hg, gates, tanh_c, c_prev, h_prev, rs, ys, active, reverse)


def lstm_sequence_backward(addr, gy, w_hh, w_hr, dh, dc, dc_next, dr, gates, tanh_c, c_prev, dgates, dhs, active,
                           reverse):
    """All backward steps of an LSTM layer-direction (``ops.recurrent.LSTMLayer.backward``'s loop).
    ``w_hr`` and ``dhs``: None without a projection."""
    _dispatch.calls["lstm_sequence_backward"] += 1
    lstm_steps_backward(addr, packed_right(w_hh, dh.shape[0], active), gy, w_hh, w_hr, dh, dc, dc_next, dr, gates,
                        tanh_c, c_prev, dgates, dhs, active, reverse)


def lstm_steps_backward(addr, packing, gy, w_hh, w_hr, dh, dc, dc_next, dr, gates, tanh_c, c_prev, dgates, dhs,
                        active, reverse):
    """``lstm_sequence_backward`` with ``packing = packed_right(w_hh, ...)`` made once by the caller (see
    ``lstm_steps_forward``): the gradients of the state are carried in ``dh`` and ``dc``."""
    compute, packed = packing
    _backward_loop(addr, compute, _address(packed), gy, w_hh, _NO_MATRIX if w_hr is None else w_hr, dh, dc,
                   dc_next, dr, gates, tanh_c, c_prev, dgates, _NO_STEPS if dhs is None else dhs, active, reverse)


def _add_product_into(addr, a, b, out):
    """out += a @ b (2-D float32, BLAS's GEMM at ``addr`` with beta = 1); False, with nothing written, when
    BLAS cannot read an operand in place or ``out`` is not row-major."""
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    ta, lda = _operand(a, 4)
    tb, ldb = _operand(b, 4)
    tc, ldc = _operand(out, 4)
    if ta == 0 or tb == 0 or tc != _NO_TRANS or b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        return False
    if m and n and k:
        _sgemm_add_at(addr, ta, tb, m, n, k, a.ctypes.data, lda, b.ctypes.data, ldb, out.ctypes.data, ldc)
    return True


_add_product = _jit(_add_product_into, FAST)


def add_product(addr, a, b, out) -> bool:
    """out += a @ b by the GEMM at ``addr`` (``recurrent.sequence_gemm``), accumulating in place: a weight
    gradient summed over chunks of steps (``ops/recurrent_wave.py``). False when BLAS cannot read the arrays
    as they are (the caller then adds NumPy's product)."""
    return _add_product(addr, a, b, out)


# -- MKL's pack-once GEMM for the per-step products ---------------------------------------------------------
# A GEMM packs its right operand into its own blocked layout on every call; the per-step products
# multiply by the same W_hh 35 times, so MKL's cblas_sgemm_pack (once per sequence) and
# cblas_sgemm_compute (per step) skip that (oneDNN's LSTM does the same). Whenever MKL can be had for the
# loop (``threads.loop_mkl()``, loaded by ``backend/blas.py``); without it the plain GEMM runs.
_BLAS_B_MATRIX = 162
_packing = False  # False: not looked for yet; None: none; else (get_size, pack, compute address)


def _mkl_packing():
    global _packing
    if _packing is False:
        _packing = None
        lib = threads.loop_mkl()
        dll = ctypes.CDLL(lib.path) if lib is not None else None  # the handle MKL is already loaded under
        # the explicit 64-bit-integer entry points, as blas.py's (MKL's interface layer stays LP64)
        names = ("pack_get_size", "pack", "compute")
        if dll is not None and all(hasattr(dll, f"cblas_sgemm_{name}_64") for name in names):
            i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
            get_size, pack = dll.cblas_sgemm_pack_get_size_64, dll.cblas_sgemm_pack_64
            get_size.argtypes, get_size.restype = (i32, i64, i64, i64), ctypes.c_size_t
            pack.argtypes, pack.restype = (i32, i32, i32, i64, i64, i64, ctypes.c_float, ptr, i64, ptr), None
            _packing = get_size, pack, ctypes.cast(dll.cblas_sgemm_compute_64, ptr).value
    return _packing


def packed_right(w, rows: int, active):
    """(MKL's compute address, ``w`` (k, n) packed as the right operand of (rows, k) @ (k, n)), or (0, None)
    without MKL's packing, or when some step has fewer rows than it was packed for (a packed batch)."""
    found = _mkl_packing()
    if found is None or np.any(active != rows):
        return 0, None
    get_size, pack, compute = found
    k, n = w.shape
    buffer = np.empty(get_size(_BLAS_B_MATRIX, rows, n, k) + 64, np.uint8)
    packed = buffer[-buffer.ctypes.data % 64:][:buffer.size - 64]  # 64-byte aligned, as mkl_malloc's
    pack(_ROW_MAJOR, _BLAS_B_MATRIX, _NO_TRANS, rows, n, k, 1.0, w.ctypes.data, n, packed.ctypes.data)
    return compute, packed


def _address(array) -> int:
    return 0 if array is None else array.ctypes.data


_F32 = np.dtype(np.float32)
_NO_MATRIX = np.zeros((0, 0), _F32)  # no projection: one compiled loop serves both cases
_NO_STEPS = np.zeros((0, 0, 0), _F32)
