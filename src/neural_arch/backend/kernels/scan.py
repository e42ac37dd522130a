"""The selective scan of Mamba (Gu & Dao 2023) on raw arrays: the numba kernel beside its NumPy twin.

Shapes (channels last): u, delta (Bt, L, D); A (D, N); B, C (Bt, L, N); h0 (Bt, D, N).
For every batch row, channel d and state n::

    h_t[d, n] = exp(delta_t[d] A[d, n]) h_{t-1}[d, n] + delta_t[d] B_t[n] u_t[d]
    y_t[d]    = sum_n C_t[n] h_t[d, n]

Backward runs the recurrence in reverse. With g_t = dL/dh_t (total)::

    g_t         = C_t[n] gy_t[d] + exp(delta_{t+1} A) g_{t+1}
    dC_t[n]     = sum_d gy_t[d] h_t[d, n]
    ddelta_t[d] = sum_n g_t (h_{t-1} exp(delta_t A) A + B_t u_t)
    dA[d, n]    = sum_t g_t h_{t-1} exp(delta_t A) delta_t
    dB_t[n]     = sum_d g_t delta_t u_t          du_t[d] = sum_n g_t delta_t B_t

The states h_t are (Bt, L, D, N), N times bigger than the input, so they are not kept between
forward and backward: backward recomputes them. The twin is one vectorised step per time step
over all of them; the kernel runs the time loop once per batch row with the (D, N) state in
cache, holds only that row's (L, D, N) states in backward, and threads split the batch rows
(dA, summed over them, as per-thread partial sums).
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, chunks, expf, kernel

__all__ = ["scan_backward", "scan_forward"]


# -- the NumPy twin: the readable spelling ----------------------------------------------------------------
def _states(u, delta, A, B, h0):
    """Every state h_t, (Bt, L, D, N), and the decays exp(delta_t A), same shape."""
    decay = np.exp(delta[..., None] * A)  # (Bt, L, D, N)
    drive = (delta * u)[..., None] * B[:, :, None, :]  # delta_t B_t u_t, (Bt, L, D, N)
    states = np.empty_like(decay)
    h = h0
    for t in range(u.shape[1]):
        h = decay[:, t] * h + drive[:, t]
        states[:, t] = h
    return states, decay


def _scan_forward(u, delta, A, B, C, h0):
    """(y (Bt, L, D), last state (Bt, D, N)) from the state h0 (Bt, D, N) left by earlier tokens."""
    states, _ = _states(u, delta, A, B, h0)
    return np.einsum("bldn,bln->bld", states, C), (states[:, -1].copy() if u.shape[1] else h0)


def _scan_backward(gy, u, delta, A, B, C, h0):
    """(du, ddelta, dA, dB, dC) for the upstream gradient gy (Bt, L, D)."""
    states, decay = _states(u, delta, A, B, h0)
    previous = np.concatenate([h0[:, None], states[:, :-1]], 1)  # h_{t-1}
    dC = np.einsum("bld,bldn->bln", gy, states)
    g = np.empty_like(states)  # dL/dh_t
    acc = np.zeros_like(h0)
    for t in range(u.shape[1] - 1, -1, -1):
        acc = gy[:, t, :, None] * C[:, t, None, :] + acc
        g[:, t] = acc
        acc = acc * decay[:, t]
    through_decay = g * previous * decay  # dL/d(delta_t A)
    ddelta = np.einsum("bldn,dn->bld", through_decay, A) + np.einsum("bldn,bln->bld", g, B) * u
    dA = np.einsum("bldn,bld->dn", through_decay, delta)
    dB = np.einsum("bldn,bld->bln", g, delta * u)
    du = np.einsum("bldn,bln->bld", g, B) * delta
    return du, ddelta, dA, dB, dC


# -- the kernels: the same loops, one batch row at a time ---------------------------------------------------
@kernel(FAST, rows=(0, 1, 3, 4, 5, 6, 7))
def scan_forward_kernel(u, delta, A, B, C, h0, y, last):
    """y and the last state (``last``, also the running state) of each batch row."""
    rows, length, D = u.shape
    N = A.shape[1]
    for b in range(rows):
        h = last[b]
        h[:, :] = h0[b]
        for t in range(length):
            for d in range(D):
                dt = delta[b, t, d]
                drive = dt * u[b, t, d]
                acc = F(0.0)
                for n in range(N):
                    h[d, n] = expf(dt * A[d, n]) * h[d, n] + drive * B[b, t, n]
                    acc += C[b, t, n] * h[d, n]
                y[b, t, d] = acc


@dispatch(_scan_forward)
def scan_forward(u, delta, A, B, C, h0):
    u, delta, A, B, C, h0 = (np.ascontiguousarray(a) for a in (u, delta, A, B, C, h0))
    y, last = np.empty_like(u), np.empty_like(h0)
    scan_forward_kernel(u, delta, A, B, C, h0, y, last)
    return y, last


@kernel(FAST, rows=(0, 1, 2, 4, 5, 6, 7, 8, 10, 11), parts=(9,))
def scan_backward_kernel(gy, u, delta, A, B, C, h0, du, ddelta, dA_parts, dB, dC):
    """du, ddelta, dB, dC (dB and dC zeros on entry) per batch row; dA as per-chunk partial sums (zeros on
    entry), added up by the caller. Each row's states are recomputed first, then walked back."""
    rows, length, D = u.shape
    N = A.shape[1]
    states = np.empty((length + 1, D, N), np.float32)  # states[t + 1] = h_t; states[0] = h0
    g = np.empty((D, N), np.float32)  # dL/dh, carried back in time
    n_chunks = dA_parts.shape[0]
    per = (rows + n_chunks - 1) // n_chunks
    for k in range(n_chunks):
        for b in range(k * per, min(rows, (k + 1) * per)):
            states[0] = h0[b]
            for t in range(length):
                for d in range(D):
                    dt = delta[b, t, d]
                    drive = dt * u[b, t, d]
                    for n in range(N):
                        states[t + 1, d, n] = expf(dt * A[d, n]) * states[t, d, n] + drive * B[b, t, n]
            g[:, :] = F(0.0)
            for t in range(length - 1, -1, -1):
                for d in range(D):
                    dt = delta[b, t, d]
                    ut = u[b, t, d]
                    gyt = gy[b, t, d]
                    acc_delta = F(0.0)
                    acc_u = F(0.0)
                    for n in range(N):
                        decay = expf(dt * A[d, n])
                        gn = g[d, n] + C[b, t, n] * gyt  # dL/dh_t
                        dC[b, t, n] += gyt * states[t + 1, d, n]
                        through_decay = gn * states[t, d, n] * decay
                        acc_delta += through_decay * A[d, n] + gn * B[b, t, n] * ut
                        dA_parts[k, d, n] += through_decay * dt
                        dB[b, t, n] += gn * dt * ut
                        acc_u += gn * B[b, t, n]
                        g[d, n] = gn * decay  # on to h_{t-1}
                    ddelta[b, t, d] = acc_delta
                    du[b, t, d] = acc_u * dt


@dispatch(_scan_backward)
def scan_backward(gy, u, delta, A, B, C, h0):
    gy, u, delta, A, B, C, h0 = (np.ascontiguousarray(a) for a in (gy, u, delta, A, B, C, h0))
    du, ddelta = np.empty_like(u), np.empty_like(u)
    dA = np.zeros((chunks(u.shape[0]),) + A.shape, np.float32)
    dB, dC = np.zeros_like(B), np.zeros_like(C)
    scan_backward_kernel(gy, u, delta, A, B, C, h0, du, ddelta, dA, dB, dC)
    return du, ddelta, dA.sum(axis=0), dB, dC
