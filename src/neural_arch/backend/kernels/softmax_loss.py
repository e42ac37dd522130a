"""Softmax and log_softmax, and the losses built on them: class-index cross-entropy / nll, and
the squared error of mse_loss.

``class_nll`` returns each position's loss and, when asked, its gradient with respect to the
logits for an upstream gradient of 1, computed in the same pass (one read of the logits); the
op's backward then only scales it.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels import half
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, as_f32, chunks, expf, kernel, row_done, row_max, row_out
from neural_arch.backend.threads import policy


# -- softmax, log_softmax --------------------------------------------------------------------------------
def _softmax(x, axes, log):
    """y = e^{x - m} / sum e^{x - m} along ``axes`` (m the max), or with ``log`` y = x - m - log sum e^{x - m}.
    A row that is all -inf gives NaN, as in torch."""
    with np.errstate(invalid="ignore", divide="ignore"):
        y = x - x.max(axis=axes, keepdims=True)
        if log:
            y -= np.log(np.exp(y).sum(axis=axes, keepdims=True))
        else:
            np.exp(y, out=y)
            y /= y.sum(axis=axes, keepdims=True)
    return y


@kernel(FAST, rows=(0, 1))
def softmax_forward_kernel(x, y, log):
    rows, d = x.shape
    xs, ys = np.empty(d, np.float32), np.empty(d, np.float32)  # (bfloat16 rows in float32)
    for r in range(rows):
        m = row_max(x, r, d)
        xr, yr = as_f32(x[r], xs), row_out(y, r, ys)
        for j in range(d):  # (sums in loops that store nothing: see cross_entropy_kernel)
            yr[j] = xr[j] - m if log else expf(xr[j] - m)
        s = F(0.0)
        if log:
            for j in range(d):
                s += expf(yr[j])
        else:
            for j in range(d):
                s += yr[j]
        if log:  # (x - m) - log s, stored then subtracted: fastmath may not regroup it as x - (m + log s),
            log_s = np.log(s)  # which rounds log s away when |m| is large
            for j in range(d):
                yr[j] -= log_s
        else:
            inv = F(1.0) / s
            for j in range(d):
                yr[j] *= inv
        row_done(y, r, yr)


def _rows(a):
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


@dispatch(half.widened(_softmax), first=half.KERNEL_DTYPES)
def softmax(x, axes, log):
    """x float32 or bfloat16; y in x's dtype"""
    if axes != (x.ndim - 1,):
        return half.widened(_softmax)(x, axes, log)
    y = np.empty(x.shape, x.dtype)  # a new array: aliased with x, LLVM would not vectorise the loops
    softmax_forward_kernel(half.bits(_rows(x)), half.bits(y.reshape(-1, x.shape[-1])), log)
    return y


def _softmax_backward(y, g, axes, log):
    """softmax: dx = y (g - sum(g y));   log_softmax: dx = g - e^y sum(g)"""
    if log:
        return g - np.exp(y) * g.sum(axis=axes, keepdims=True)
    return y * (g - (g * y).sum(axis=axes, keepdims=True))  # the docstring's form, as the kernel and torch


@kernel(FAST, rows=(0, 1, 2))
def softmax_backward_kernel(y, g, dx, log):
    rows, d = y.shape
    ys, gs, dxs = np.empty(d, np.float32), np.empty(d, np.float32), np.empty(d, np.float32)
    for r in range(rows):
        yr, gr, dxr = as_f32(y[r], ys), as_f32(g[r], gs), row_out(dx, r, dxs)
        s = F(0.0)
        if log:
            for j in range(d):
                s += gr[j]
            for j in range(d):
                dxr[j] = gr[j] - expf(yr[j]) * s
        else:
            for j in range(d):
                s += gr[j] * yr[j]
            for j in range(d):
                dxr[j] = yr[j] * (gr[j] - s)
        row_done(dx, r, dxr)


@dispatch(half.widened(_softmax_backward), first=half.KERNEL_DTYPES)
def softmax_backward(y, g, axes, log):
    """y, g float32 or bfloat16 (each its own); dx in y's dtype"""
    if axes != (y.ndim - 1,) or g.shape != y.shape:
        return half.widened(_softmax_backward)(y, g, axes, log)
    dx = np.empty(y.shape, y.dtype)
    softmax_backward_kernel(half.bits(_rows(y)), half.bits(_rows(g)), half.bits(dx.reshape(-1, y.shape[-1])), log)
    return dx


# -- cross-entropy and nll over class indices ----------------------------------------------------------------
def _class_nll(x, target, weight, ignore_index, smoothing, log_softmax, want_grad):
    """Per position of x (N, C, ...) with class t, weights w (1 without), smoothing e, logp =
    log_softmax(x) along axis 1 (``log_softmax``; else x holds log-probabilities):
        loss = -(1 - e) w_t logp_t - (e / C) sum_c w_c logp_c      (0 where t = ignore_index)
        dloss/dx = p sum_c a_c - a     (log_softmax, p = e^logp)   or   -a,
        a_c = (1 - e) w_t [c = t] + (e / C) w_c
    Returns (loss, dloss/dx or None, sum of the losses, sum of w_t over counted positions, number
    of targets neither ignore_index nor in [0, C): the caller raises on those)."""
    c = x.shape[1]
    valid = target != ignore_index
    bad = int(np.count_nonzero(valid & ((target < 0) | (target >= c))))
    if bad:
        return None, None, 0.0, 0.0, bad
    idx = np.expand_dims(np.where(valid, target, 0), 1)
    logp = _softmax(x, (1,), True) if log_softmax else x
    shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-class vector along axis 1
    wt = valid.astype(x.dtype) if weight is None else np.take(weight, idx[:, 0]) * valid
    loss = -np.take_along_axis(logp, idx, axis=1)[:, 0] * wt
    w = 1 if weight is None else weight.reshape(shape)
    if smoothing:
        loss = (1 - smoothing) * loss - (smoothing / c) * (logp * w).sum(axis=1) * valid
    dx = None
    if want_grad:
        hot = (1 - smoothing) * np.expand_dims(wt, 1)  # a_t's first term
        spread = (smoothing / c) * np.expand_dims(valid, 1) * w if smoothing else None
        if log_softmax:
            total_a = hot if spread is None else hot + (
                spread * c if weight is None else spread.sum(axis=1, keepdims=True))
            dx = np.exp(logp) * total_a
        else:
            dx = np.zeros(x.shape, x.dtype)
        if spread is not None:
            dx -= spread
        np.put_along_axis(dx, idx, np.take_along_axis(dx, idx, axis=1) - hot, axis=1)
        dx = dx.astype(x.dtype, copy=False)
    return loss.astype(x.dtype, copy=False), dx, float(loss.sum()), float(wt.sum()), 0


@kernel(FAST, rows=(0, 1, 4, 5), parts=(7,))
def cross_entropy_kernel(x, target, ignore_index, smoothing, loss, dx, want_grad, stats):
    """The unweighted log_softmax case on (N, C) logits. ``stats[k]`` (float64, zeroed by the caller)
    receives chunk k's (sum of losses, rows counted, bad targets); a bad row gets loss 0."""
    rows, c = x.shape
    n_chunks = stats.shape[0]
    per = (rows + n_chunks - 1) // n_chunks
    xs, dxs = np.empty(c, np.float32), np.empty(c, np.float32)  # (bfloat16 rows in float32)
    for k in range(n_chunks):
        total = 0.0
        counted = 0.0
        bad = 0.0
        for r in range(k * per, min(rows, (k + 1) * per)):
            t = target[r]
            if t == ignore_index or t < 0 or t >= c:
                if t != ignore_index:
                    bad += 1.0
                loss[r] = F(0.0)
                if want_grad:
                    for j in range(c):
                        dx[r, j] = 0
                continue
            m = row_max(x, r, c)
            xr = as_f32(x[r], xs)
            # Each sum in a loop of its own that stores nothing: a loop that also wrote dx was vectorised
            # one way for a float32 dx (which LLVM must assume may overlap x) and another for the
            # bfloat16 path's scratch row, and the sums came out an ulp apart.
            s_shifted = F(0.0)  # sum of (x - m): with large logits, summing x itself would lose log s to rounding
            if smoothing != 0:  # (only label smoothing reads it)
                for j in range(c):
                    s_shifted += xr[j] - m
            s = F(0.0)
            # e^{x - m} stored, then summed: kept in dx (one exp per logit, not two), or in a scratch row
            # without a gradient (an exp inside the sum's loop kept it scalar; the stored loop vectorises)
            dxr = row_out(dx, r, dxs) if want_grad else dxs
            for j in range(c):
                dxr[j] = expf(xr[j] - m)
            for j in range(c):
                s += dxr[j]
            # lse - (1 - s) x_t - s mean(x) with lse = m + log s, written in differences from m
            lr = (F(1.0) - smoothing) * (m - xr[t]) - smoothing * s_shifted / F(c) + np.log(s)
            loss[r] = lr
            total += lr
            counted += 1.0
            if want_grad:
                inv = F(1.0) / s
                off = smoothing / F(c)
                for j in range(c):
                    dxr[j] = dxr[j] * inv - off
                dxr[t] -= F(1.0) - smoothing
                row_done(dx, r, dxr)
        stats[k, 0] += total
        stats[k, 1] += counted
        stats[k, 2] += bad


@dispatch(half.widened(_class_nll, narrow=(1,)), first=half.KERNEL_DTYPES)
def class_nll(x, target, weight, ignore_index, smoothing, log_softmax, want_grad):
    """x float32 or bfloat16; the losses float32 (as torch's cross_entropy under autocast), dloss/dx in
    x's dtype"""
    if x.ndim != 2 or weight is not None or not log_softmax:
        return half.widened(_class_nll, narrow=(1,))(x, target, weight, ignore_index, smoothing, log_softmax,
                                                      want_grad)
    x = np.ascontiguousarray(x)
    n = x.shape[0]
    loss = np.empty(n, np.float32)
    dx = np.empty_like(x) if want_grad else np.empty((1, 1), np.float32)
    stats = np.zeros((chunks(n) if x.size >= policy.kernel_min_elements else 1, 3))
    cross_entropy_kernel(half.bits(x), target.astype(np.int64, copy=False), ignore_index, np.float32(smoothing),
                         loss, half.bits(dx), want_grad, stats)
    total, counted, bad = stats.sum(axis=0).tolist()
    return loss, (dx if want_grad else None), total, counted, int(bad)


# -- squared error ---------------------------------------------------------------------------------------
def _squared_error(x, y):
    """sum of (x - y)^2, accumulated in float64 (x and y broadcast)"""
    d = x - y
    return float((d * d).sum(dtype=np.float64))


@kernel(FAST, rows=(0, 1), parts=(2,))
def squared_error_kernel(x, y, parts):
    """parts[c] += sum of (x - y)^2 over chunk c of the elements (the caller adds the parts)"""
    n = x.size
    n_chunks = parts.shape[0]
    per = (n + n_chunks - 1) // n_chunks
    for c in range(n_chunks):
        xc, yc = x[c * per: min(n, (c + 1) * per)], y[c * per: min(n, (c + 1) * per)]
        s = 0.0
        for i in range(xc.size):  # (from 0: an index from c * per kept the loop scalar)
            d = xc[i] - yc[i]
            s += d * d
        parts[c] += s


@dispatch(_squared_error)
def squared_error(x, y):
    if type(y) is not np.ndarray or x.shape != y.shape:
        return _squared_error(x, y)
    x, y = np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1)
    parts = np.zeros(chunks(x.size) if x.size >= policy.kernel_min_elements else 1)
    squared_error_kernel(x, y, parts)
    return float(parts.sum())


def _scaled_difference(x, y, s):
    """s (x - y): the gradient of a squared error"""
    return (x - y) * s


@kernel(FAST, rows=(0, 1, 3))
def scaled_difference_kernel(x, y, s, out):
    for i in range(x.size):
        out[i] = s * (x[i] - y[i])


@dispatch(_scaled_difference)
def scaled_difference(x, y, s):
    if type(y) is not np.ndarray or x.shape != y.shape:
        return _scaled_difference(x, y, s)
    out = np.empty(x.shape, np.float32)
    scaled_difference_kernel(np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1),
                             np.float32(s), out.reshape(-1))
    return out
