"""The selective scan of Mamba (Gu & Dao 2023) on raw arrays: a NumPy twin and a numba kernel.

Shapes (channels last): u, delta (Bt, L, D); A (D, N); B, C (Bt, L, N);
h0 (Bt, D, N) or None (zeros). For every batch row, channel d and state n::

    h_t[d, n] = exp(delta_t[d] A[d, n]) h_{t-1}[d, n] + delta_t[d] B_t[n] u_t[d]
    y_t[d]    = sum_n C_t[n] h_t[d, n]

Backward runs the recurrence in reverse. With g_t = dL/dh_t (total):

    g_t        = C_t[n] gy_t[d] + exp(delta_{t+1} A) g_{t+1}
    dC_t[n]    = sum_d gy_t[d] h_t[d, n]
    ddelta_t[d] = sum_n g_t (h_{t-1} exp(delta_t A) A + B_t u_t)
    dA[d, n]   = sum_t g_t h_{t-1} exp(delta_t A) delta_t
    dB_t[n]    = sum_d g_t delta_t u_t          du_t[d] = sum_n g_t delta_t B_t

The states h_t are (Bt, L, D, N), N times bigger than the input, so they are
not kept between forward and backward: backward recomputes them (one batch
row at a time in the kernel, so it never holds more than (L, D, N)).

``scan_forward`` / ``scan_backward`` dispatch: the numba kernel when
``kernels.enabled_by_env()`` and numba imports, else the NumPy twin. The
kernel runs the time loop once per batch row with the (D, N) state in
registers and cache; the NumPy twin is one vectorised step per time step.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import kernels

__all__ = ["scan_backward", "scan_backward_numpy", "scan_forward", "scan_forward_numpy"]


# -- the NumPy twin: the readable spelling --------------------------------------------------------------
def _states_numpy(u, delta, A, B, h0):
    """Every state h_t, (Bt, L, D, N), and the decays exp(delta_t A), same shape."""
    Bt, L, D = u.shape
    decay = np.exp(delta[..., None] * A)  # (Bt, L, D, N)
    drive = (delta * u)[..., None] * B[:, :, None, :]  # delta_t B_t u_t, (Bt, L, D, N)
    states = np.empty_like(decay)
    h = np.zeros((Bt, D, A.shape[1]), u.dtype) if h0 is None else h0
    for t in range(L):
        h = decay[:, t] * h + drive[:, t]
        states[:, t] = h
    return states, decay


def scan_forward_numpy(u, delta, A, B, C, h0=None):
    """(y (Bt, L, D), last state (Bt, D, N))."""
    states, _ = _states_numpy(u, delta, A, B, h0)
    y = np.einsum("bldn,bln->bld", states, C)
    last = states[:, -1] if u.shape[1] else (np.zeros((u.shape[0],) + A.shape, u.dtype) if h0 is None else h0)
    return y, last


def scan_backward_numpy(gy, u, delta, A, B, C, h0=None):
    """(du, ddelta, dA, dB, dC) for the upstream gradient gy (Bt, L, D)."""
    states, decay = _states_numpy(u, delta, A, B, h0)
    L = u.shape[1]
    previous = np.concatenate([(np.zeros_like(states[:, :1]) if h0 is None else h0[:, None]), states[:, :-1]], 1)
    dC = np.einsum("bld,bldn->bln", gy, states)
    g = np.empty_like(states)  # dL/dh_t
    acc = np.zeros_like(states[:, 0])
    for t in range(L - 1, -1, -1):
        acc = gy[:, t, :, None] * C[:, t, None, :] + acc
        g[:, t] = acc
        acc = acc * decay[:, t]
    through_decay = g * previous * decay  # dL/d(delta_t A)
    ddelta = np.einsum("bldn,dn->bld", through_decay, A) + np.einsum("bldn,bln->bld", g, B) * u
    dA = np.einsum("bldn,bld->dn", through_decay, delta)
    dB = np.einsum("bldn,bld->bln", g, delta * u)
    du = np.einsum("bldn,bln->bld", g, B) * delta
    return du, ddelta, dA, dB, dC


# -- the numba kernels: the same loops, one batch row at a time --------------------------------------------
def _scan_forward_kernel(u, delta, A, B, C, h0, y, last):  # pragma: no cover - compiled
    Bt, L, D = u.shape
    N = A.shape[1]
    for b in range(Bt):
        h = h0[b].copy()
        for t in range(L):
            for d in range(D):
                dt = delta[b, t, d]
                du = dt * u[b, t, d]
                acc = 0.0
                for n in range(N):
                    h[d, n] = np.exp(dt * A[d, n]) * h[d, n] + du * B[b, t, n]
                    acc += C[b, t, n] * h[d, n]
                y[b, t, d] = acc
        last[b] = h


def _scan_backward_kernel(gy, u, delta, A, B, C, h0, du, ddelta, dA, dB, dC):  # pragma: no cover - compiled
    Bt, L, D = u.shape
    N = A.shape[1]
    states = np.empty((L + 1, D, N), u.dtype)  # states[t + 1] = h_t; states[0] = h0
    g = np.empty((D, N), u.dtype)
    for b in range(Bt):
        states[0] = h0[b]
        for t in range(L):
            for d in range(D):
                dt = delta[b, t, d]
                for n in range(N):
                    states[t + 1, d, n] = np.exp(dt * A[d, n]) * states[t, d, n] + dt * u[b, t, d] * B[b, t, n]
        g[:] = 0.0
        for t in range(L - 1, -1, -1):
            for d in range(D):
                dt = delta[b, t, d]
                ut = u[b, t, d]
                gyt = gy[b, t, d]
                acc_delta = 0.0
                acc_u = 0.0
                for n in range(N):
                    decay = np.exp(dt * A[d, n])
                    gn = g[d, n] + C[b, t, n] * gyt  # dL/dh_t
                    dC[b, t, n] += gyt * states[t + 1, d, n]
                    through_decay = gn * states[t, d, n] * decay
                    acc_delta += through_decay * A[d, n] + gn * B[b, t, n] * ut
                    dA[d, n] += through_decay * dt
                    dB[b, t, n] += gn * dt * ut
                    acc_u += gn * B[b, t, n]
                    g[d, n] = gn * decay  # on to h_{t-1}
                ddelta[b, t, d] = acc_delta
                du[b, t, d] = acc_u * dt


_compiled = None


def _compilable(a) -> bool:
    """The kernels take NumPy float32/float64 arrays; CuPy, float16 and bfloat16 take the NumPy twin."""
    return isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64)


def _kernels():
    """(forward, backward) compiled by numba, or None when the kernels are off or numba is missing."""
    global _compiled
    if _compiled is None:
        _compiled = False
        if kernels.enabled_by_env():
            try:
                from numba import njit  # noqa: PLC0415 - numba is optional: the NumPy twin runs without it

                options = dict(cache=True, error_model="numpy", nogil=True)
                _compiled = (njit(**options)(_scan_forward_kernel), njit(**options)(_scan_backward_kernel))
            except ImportError:
                _compiled = False
    return _compiled or None


def _initial(h0, u, A):
    return np.zeros((u.shape[0],) + A.shape, u.dtype) if h0 is None else np.ascontiguousarray(h0, u.dtype)


def scan_forward(u, delta, A, B, C, h0=None, use_kernel: bool | None = None):
    """(y (Bt, L, D), last state (Bt, D, N)); the kernel unless it is off (or ``use_kernel=False``)."""
    compiled = _kernels() if use_kernel is not False else None
    if compiled is None or not _compilable(u):
        return scan_forward_numpy(u, delta, A, B, C, h0)
    args = [np.ascontiguousarray(a) for a in (u, delta, A, B, C)]
    y = np.empty_like(args[0])
    last = np.empty((u.shape[0],) + A.shape, u.dtype)
    compiled[0](*args, _initial(h0, u, A), y, last)
    return y, last


def scan_backward(gy, u, delta, A, B, C, h0=None, use_kernel: bool | None = None):
    """(du, ddelta, dA, dB, dC); the kernel unless it is off (or ``use_kernel=False``)."""
    compiled = _kernels() if use_kernel is not False else None
    if compiled is None or not _compilable(u):
        return scan_backward_numpy(gy, u, delta, A, B, C, h0)
    args = [np.ascontiguousarray(a, u.dtype) for a in (gy, u, delta, A, B, C)]
    du, ddelta = np.empty_like(args[1]), np.empty_like(args[1])
    dA, dB, dC = np.zeros_like(args[3]), np.zeros_like(args[4]), np.zeros_like(args[5])
    compiled[1](*args, _initial(h0, u, A), du, ddelta, dA, dB, dC)
    return du, ddelta, dA, dB, dC
