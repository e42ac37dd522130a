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

from neural_arch.backend.kernels._jit import FAST, _jit, inline
from neural_arch.backend.kernels.recurrent import lstm_rows_backward, lstm_rows_forward
from neural_arch.backend.spin import _NO_TRANS, _sgemm_at


@inline(FAST)
def _copy_rows(src, dst, rows):
    cols = src.shape[1]
    for b in range(rows):
        for j in range(cols):
            dst[b, j] = src[b, j]


def _lstm_forward_loop(addr, xg, w_hh_t, w_hr_t, h, c, hg, gates, tanh_c, c_prev, h_prev, rs, ys, active,
                       reverse):
    """The forward steps of ``ops.recurrent.LSTMLayer`` (see there for the arrays): at step t the
    first ``active[t]`` rows move; ``w_hh_t`` (P, 4H) and ``w_hr_t`` (H, P; (0, 0) without a projection)
    are row-major copies of the transposed weights. ``h_prev`` may be a strided view (backward reads it
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
        _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, G, P, h.ctypes.data, P, w_hh_t.ctypes.data, G, hg.ctypes.data, G)
        lstm_rows_forward(xg[t], hg, cp, gates[t], tanh_c[t], c, r, n)
        if projected:
            _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, P, H, r.ctypes.data, H, w_hr_t.ctypes.data, P, y.ctypes.data, P)
        _copy_rows(y, h, n)


def _lstm_backward_loop(addr, gy, w_hh, w_hr, dh, dc, dc_next, dr, gates, tanh_c, c_prev, dgates, dhs, active,
                        reverse):
    """The backward steps of ``ops.recurrent.LSTMLayer``: ``dh`` and ``dc`` come in holding the gradients
    of h_n and c_n and leave holding those of h0 and c0; ``dgates`` and (with a projection) ``dhs``, the
    dL/dh_t of every step, are filled for the weight gradients. ``w_hr``: (0, 0) without a projection."""
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
        _sgemm_at(addr, _NO_TRANS, _NO_TRANS, n, P, G, dg.ctypes.data, G, w_hh.ctypes.data, P, dh.ctypes.data, P)


lstm_forward_loop = _jit(_lstm_forward_loop, FAST)
lstm_backward_loop = _jit(_lstm_backward_loop, FAST)
