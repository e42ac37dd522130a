"""One time step of the LSTM and GRU cells on raw arrays: the numba kernels beside their NumPy twins.

The recurrent ops (``ops/recurrent.py``) compute the input projection of every time step as one
GEMM and, per step, one GEMM for the hidden state's projection ``hg = h W_hh^T``; what is left
per step is elementwise: the gate nonlinearities and the state update. Each function here does
that in one pass over the batch rows, writing into arrays the caller gives (slices of the
per-sequence arrays that backward reads), so a step allocates nothing.

LSTM (torch's gate order i, f, g, o; ``xg`` already holds both biases)::

    a = xg + hg      i, f, o = sigmoid(a_i, a_f, a_o)      g = tanh(a_g)
    c = f c_prev + i g                                     r = o tanh(c)   (h = r, or r W_hr^T)

    backward, given dr and dc (the gradient reaching c from step t + 1):
    dc <- dc + dr o (1 - tanh(c)^2)       dc_prev = dc f
    da_i = dc g i (1 - i)    da_f = dc c_prev f (1 - f)    da_g = dc i (1 - g^2)
    da_o = dr tanh(c) o (1 - o)

GRU (gate order r, z, n; ``xg`` holds b_ih, ``hg`` holds b_hh)::

    r = sigmoid(xg_r + hg_r)    z = sigmoid(xg_z + hg_z)    n = tanh(xg_n + r hg_n)
    h = (1 - z) n + z h_prev

    backward, given dh:
    dn = dh (1 - z) (1 - n^2)    dz = dh (h_prev - n) z (1 - z)    dr = dn hg_n r (1 - r)
    dxg = (dr, dz, dn)           dhg = (dr, dz, dn r)              dh_prev (direct part) = dh z
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import threads
from neural_arch.backend.kernels import _dispatch
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, U, expf, inline, kernel, sigmoidf

__all__ = ["gru_step_backward", "gru_step_forward", "lstm_step_backward", "lstm_step_forward", "sequence_gemm"]


def _sigmoid(x):
    # NOTE: the float64 spelling that does not overflow for large negative x (exp(-x) would)
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


# -- the NumPy twins: the readable spelling -------------------------------------------------------------
def _lstm_step_forward(xg, hg, c_prev, gates, tanh_c, c, r):
    """Fill ``gates`` (activated i, f, g, o), ``tanh_c``, ``c`` and ``r = o tanh(c)`` for one step."""
    H = c.shape[1]
    a = xg + hg
    gates[:, :2 * H] = _sigmoid(a[:, :2 * H])
    gates[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
    gates[:, 3 * H:] = _sigmoid(a[:, 3 * H:])
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    np.add(f * c_prev, i * g, out=c)
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=r)


def _lstm_step_backward(dr, dc, gates, c_prev, tanh_c, dgates, dc_prev):
    """Fill ``dgates`` (pre-activation gradients) and ``dc_prev`` from ``dr`` and ``dc`` (from step t + 1)."""
    H = dc.shape[1]
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dc_total = dc + dr * o * (1 - tanh_c * tanh_c)
    dgates[:, :H] = dc_total * g * i * (1 - i)
    dgates[:, H:2 * H] = dc_total * c_prev * f * (1 - f)
    dgates[:, 2 * H:3 * H] = dc_total * i * (1 - g * g)
    dgates[:, 3 * H:] = dr * tanh_c * o * (1 - o)
    np.multiply(dc_total, f, out=dc_prev)


def _gru_step_forward(xg, hg, h_prev, gates, h):
    """Fill ``gates`` (activated r, z, n) and the new state ``h`` for one step."""
    H = h.shape[1]
    gates[:, :2 * H] = _sigmoid(xg[:, :2 * H] + hg[:, :2 * H])
    r, z = gates[:, :H], gates[:, H:2 * H]
    gates[:, 2 * H:] = np.tanh(xg[:, 2 * H:] + r * hg[:, 2 * H:])
    n = gates[:, 2 * H:]
    np.add(n, z * (h_prev - n), out=h)


def _gru_step_backward(dh, gates, hg, h_prev, dxg, dhg, dh_prev):
    """Fill ``dxg``, ``dhg`` (the pre-activation gradients of both projections) and ``dh_prev``
    (the part of dL/dh_prev that does not go through W_hh)."""
    H = dh.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * hg[:, 2 * H:] * r * (1 - r)
    dz = dh * (h_prev - n) * z * (1 - z)
    dxg[:, :H] = dr
    dxg[:, H:2 * H] = dz
    dxg[:, 2 * H:] = dn
    dhg[:, :H] = dr
    dhg[:, H:2 * H] = dz
    dhg[:, 2 * H:] = dn * r
    np.multiply(dh, z, out=dh_prev)


# -- the kernels: the same arithmetic, one pass per batch row ---------------------------------------------
# NOTE: each row is taken as 1-d views and each gate block gets its own loop over contiguous memory with
# uint64 indices (U): that form vectorises. A first version with one loop over j and "j + H" offsets into
# the 4H-wide 2-d rows stayed scalar and was several times slower than its NumPy twin.
@inline(FAST)
def tanhf(x):
    """tanh(x) = 2 / (1 + e^{-2x}) - 1 in float32 (the clamp inside expf keeps it finite)"""
    return F(2.0) / (F(1.0) + expf(F(-2.0) * x)) - F(1.0)


@inline(FAST)
def lstm_rows_forward(xg, hg, c_prev, gates, tanh_c, c, r, rows):
    """The forward kernel's arithmetic on the first ``rows`` rows (also run by ``recurrent_sequence``)."""
    H = c.shape[1]
    h1, h2, h3, h4 = U(H), U(2 * H), U(3 * H), U(4 * H)
    for b in range(rows):
        x, hh, gt = xg[b], hg[b], gates[b]
        for j in range(h2):  # i, f
            gt[j] = sigmoidf(x[j] + hh[j])
        for j in range(h2, h3):  # g
            gt[j] = tanhf(x[j] + hh[j])
        for j in range(h3, h4):  # o
            gt[j] = sigmoidf(x[j] + hh[j])
        cp, cb, tb, rb = c_prev[b], c[b], tanh_c[b], r[b]
        for j in range(h1):
            cn = gt[j + h1] * cp[j] + gt[j] * gt[j + h2]
            t = tanhf(cn)
            cb[j] = cn
            tb[j] = t
            rb[j] = gt[j + h3] * t


@kernel(FAST, rows=(0, 1, 2, 3, 4, 5, 6))
def lstm_step_forward_kernel(xg, hg, c_prev, gates, tanh_c, c, r):
    lstm_rows_forward(xg, hg, c_prev, gates, tanh_c, c, r, c.shape[0])


@dispatch(_lstm_step_forward)
def lstm_step_forward(xg, hg, c_prev, gates, tanh_c, c, r):
    lstm_step_forward_kernel(xg, hg, c_prev, gates, tanh_c, c, r)


@inline(FAST)
def lstm_rows_backward(dr, dc, gates, c_prev, tanh_c, dgates, dc_prev, rows):
    """The backward kernel's arithmetic on the first ``rows`` rows (also run by ``recurrent_sequence``)."""
    H = dc.shape[1]
    h1, h2, h3 = U(H), U(2 * H), U(3 * H)
    one = F(1.0)
    for b in range(rows):
        gt, dg = gates[b], dgates[b]
        drb, dcb, cp, tb, dcp = dr[b], dc[b], c_prev[b], tanh_c[b], dc_prev[b]
        for j in range(h1):
            i, f, g, o = gt[j], gt[j + h1], gt[j + h2], gt[j + h3]
            tc = tb[j]
            d = drb[j]
            dct = dcb[j] + d * o * (one - tc * tc)
            dg[j] = dct * g * i * (one - i)
            dg[j + h1] = dct * cp[j] * f * (one - f)
            dg[j + h2] = dct * i * (one - g * g)
            dg[j + h3] = d * tc * o * (one - o)
            dcp[j] = dct * f


@kernel(FAST, rows=(0, 1, 2, 3, 4, 5, 6))
def lstm_step_backward_kernel(dr, dc, gates, c_prev, tanh_c, dgates, dc_prev):
    lstm_rows_backward(dr, dc, gates, c_prev, tanh_c, dgates, dc_prev, dc.shape[0])


@dispatch(_lstm_step_backward)
def lstm_step_backward(dr, dc, gates, c_prev, tanh_c, dgates, dc_prev):
    lstm_step_backward_kernel(dr, dc, gates, c_prev, tanh_c, dgates, dc_prev)


@kernel(FAST, rows=(0, 1, 2, 3, 4))
def gru_step_forward_kernel(xg, hg, h_prev, gates, h):
    rows, H = h.shape
    h1, h2 = U(H), U(2 * H)
    for b in range(rows):
        x, hh, gt, hp, hb = xg[b], hg[b], gates[b], h_prev[b], h[b]
        for j in range(h2):  # r, z
            gt[j] = sigmoidf(x[j] + hh[j])
        for j in range(h1):  # n, first into h's row (a loop that reads and writes gates' row stays scalar)
            hb[j] = tanhf(x[j + h2] + gt[j] * hh[j + h2])
        for j in range(h1):
            n = hb[j]
            gt[j + h2] = n
            hb[j] = n + gt[j + h1] * (hp[j] - n)


@dispatch(_gru_step_forward)
def gru_step_forward(xg, hg, h_prev, gates, h):
    gru_step_forward_kernel(xg, hg, h_prev, gates, h)


@kernel(FAST, rows=(0, 1, 2, 3, 4, 5, 6))
def gru_step_backward_kernel(dh, gates, hg, h_prev, dxg, dhg, dh_prev):
    rows, H = dh.shape
    h1, h2 = U(H), U(2 * H)
    one = F(1.0)
    for b in range(rows):
        gt, hh, dx, dhh = gates[b], hg[b], dxg[b], dhg[b]
        dhb, hp, dhp = dh[b], h_prev[b], dh_prev[b]
        for j in range(h1):
            r, z, n = gt[j], gt[j + h1], gt[j + h2]
            d = dhb[j]
            dn = d * (one - z) * (one - n * n)
            dr = dn * hh[j + h2] * r * (one - r)
            dz = d * (hp[j] - n) * z * (one - z)
            dx[j] = dr
            dx[j + h1] = dz
            dx[j + h2] = dn
            dhh[j] = dr
            dhh[j + h1] = dz
            dhh[j + h2] = dn * r
            dhp[j] = d * z


@dispatch(_gru_step_backward)
def gru_step_backward(dh, gates, hg, h_prev, dxg, dhg, dh_prev):
    gru_step_backward_kernel(dh, gates, hg, h_prev, dxg, dhg, dh_prev)


# -- an LSTM layer's whole time loop in one call (``recurrent_sequence.py``) --------------------------------
def sequence_gemm(dtype) -> int:
    """The address of BLAS's ILP64 ``cblas_sgemm`` when an LSTM's whole time loop can run in one numba
    call for arrays of ``dtype`` (``recurrent_sequence.py``: float32, with the kernels on), else 0: the
    caller then runs its time loop in Python (the readable path, which computes the same)."""
    if not _dispatch.active() or np.dtype(dtype) != _F32 or not threads._gemm_address(_F32):
        return 0
    lib = threads.loop_mkl()  # the loop's BLAS: MKL's packed GEMM where it can be had
    return lib.address(_F32) if lib is not None else threads._gemm_address(_F32)


_F32 = np.dtype(np.float32)
