"""Normalisation: layer_norm and rms_norm over rows, and the channel norm behind batch_norm,
group_norm and instance_norm.

Row functions take ``x`` as (rows, d) with ``w``, ``b`` of shape (d,). The channel functions take
a C-contiguous (A, R, K, S) view of an (N, C, ...) input (:func:`channel_blocks`): statistics per
r over its A x K x S elements, the affine parameters as (R, K) (:func:`per_block`).
With xhat = (x - mean) rstd, rstd = 1 / sqrt(var + eps) and gw = g w, means over the statistics'
elements:  dx = rstd (gw - mean(gw) - xhat mean(gw xhat)),  dw = sum g xhat,  db = sum g.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels import half
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, as_f32, chunks, kernel, row_done, row_out


# -- layer norm ----------------------------------------------------------------------------------------
def _layer_norm_forward(x, w, b, eps):
    """(y, mean, rstd) per row"""
    mean = x.mean(axis=1)
    xc = x - mean[:, None]
    rstd = 1 / np.sqrt((xc * xc).mean(axis=1) + eps)
    return xc * rstd[:, None] * w + b, mean, rstd.astype(x.dtype, copy=False)


@kernel(FAST, rows=(0, 4, 5, 6))
def layer_norm_forward_kernel(x, w, b, eps, y, mean, rstd):
    """two passes per row (the mean, then the variance) for accuracy"""
    rows, d = x.shape
    xs, ys = np.empty(d, np.float32), np.empty(d, np.float32)  # (bfloat16 rows in float32)
    wf, bf = as_f32(w, np.empty(d, np.float32)), as_f32(b, np.empty(d, np.float32))
    for r in range(rows):
        xr = as_f32(x[r], xs)
        yr = row_out(y, r, ys)
        s = F(0.0)
        for j in range(d):
            s += xr[j]
        mu = s / F(d)
        q = F(0.0)
        for j in range(d):
            c = xr[j] - mu
            q += c * c
        rs = F(1.0) / np.sqrt(q / F(d) + eps)
        mean[r] = mu
        rstd[r] = rs
        for j in range(d):
            yr[j] = (xr[j] - mu) * rs * wf[j] + bf[j]
        row_done(y, r, yr)


@dispatch(half.widened(_layer_norm_forward), first=half.KERNEL_DTYPES)
def layer_norm_forward(x, w, b, eps):
    """x, w, b float32 or bfloat16 (each its own); y in x's dtype, mean and rstd float32"""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    mean, rstd = np.empty(x.shape[0], np.float32), np.empty(x.shape[0], np.float32)
    layer_norm_forward_kernel(half.bits(x), half.bits(np.ascontiguousarray(w)), half.bits(np.ascontiguousarray(b)),
                              np.float32(eps), half.bits(y), mean, rstd)
    return y, mean, rstd


def _layer_norm_backward(g, x, w, mean, rstd):
    """(dx, dw, db)"""
    xhat = (x - mean[:, None]) * rstd[:, None]
    gw = g * w
    dx = gw - gw.mean(axis=1, keepdims=True)
    dx -= xhat * (gw * xhat).mean(axis=1, keepdims=True)
    dx *= rstd[:, None]
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)


@kernel(FAST, rows=(0, 1, 3, 4, 5), parts=(6, 7))
def layer_norm_backward_kernel(g, x, w, mean, rstd, dx, dw_parts, db_parts):
    """dw and db as per-chunk partial sums, added up by the caller"""
    rows, d = x.shape
    n_chunks = dw_parts.shape[0]
    per = (rows + n_chunks - 1) // n_chunks
    gs, xs, dxs = np.empty(d, np.float32), np.empty(d, np.float32), np.empty(d, np.float32)
    wf = as_f32(w, np.empty(d, np.float32))
    for c in range(n_chunks):
        dwc, dbc = dw_parts[c], db_parts[c]
        for r in range(c * per, min(rows, (c + 1) * per)):
            gr, xr, dxr = as_f32(g[r], gs), as_f32(x[r], xs), row_out(dx, r, dxs)
            mu = mean[r]
            rs = rstd[r]
            s1 = F(0.0)
            s2 = F(0.0)
            for j in range(d):  # (the sums and dw, db in one pass: a third pass over the row cost more)
                xh = (xr[j] - mu) * rs
                gw = gr[j] * wf[j]
                s1 += gw
                s2 += gw * xh
                dwc[j] += gr[j] * xh
                dbc[j] += gr[j]
            s1 /= F(d)
            s2 /= F(d)
            for j in range(d):
                xh = (xr[j] - mu) * rs
                dxr[j] = rs * (gr[j] * wf[j] - s1 - xh * s2)
            row_done(dx, r, dxr)


@dispatch(half.widened(_layer_norm_backward, narrow=(0,), like=1), first=half.KERNEL_DTYPES)
def layer_norm_backward(g, x, w, mean, rstd):
    """g, x, w float32 or bfloat16; dx in x's dtype, dw and db float32 (summed over rows there)"""
    rows, d = x.shape
    dx = np.empty_like(x)
    dw, db = np.zeros((chunks(rows), d), np.float32), np.zeros((chunks(rows), d), np.float32)
    layer_norm_backward_kernel(half.bits(np.ascontiguousarray(g)), half.bits(x), half.bits(w), mean, rstd,
                               half.bits(dx), dw, db)
    return dx, dw.sum(axis=0), db.sum(axis=0)


# -- rms norm ------------------------------------------------------------------------------------------
def _rms_norm_forward(x, w, eps):
    """(y, rstd) per row:  y = x rstd w,  rstd = 1 / sqrt(mean(x^2) + eps)"""
    rstd = (1 / np.sqrt((x * x).mean(axis=1) + eps)).astype(x.dtype, copy=False)
    return x * rstd[:, None] * w, rstd


@kernel(FAST, rows=(0, 3, 4))
def rms_norm_forward_kernel(x, w, eps, y, rstd):
    rows, d = x.shape
    for r in range(rows):
        q = F(0.0)
        for j in range(d):
            q += x[r, j] * x[r, j]
        rs = F(1.0) / np.sqrt(q / F(d) + eps)
        rstd[r] = rs
        for j in range(d):
            y[r, j] = x[r, j] * rs * w[j]


@dispatch(_rms_norm_forward)
def rms_norm_forward(x, w, eps):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    rstd = np.empty(x.shape[0], np.float32)
    rms_norm_forward_kernel(x, np.ascontiguousarray(w), np.float32(eps), y, rstd)
    return y, rstd


def _rms_norm_backward(g, x, w, rstd):
    """(dx, dw):  xhat = x rstd,  dx = rstd (gw - xhat mean(gw xhat)),  dw = sum g xhat"""
    xhat = x * rstd[:, None]
    gw = g * w
    dx = gw - xhat * (gw * xhat).mean(axis=1, keepdims=True)
    dx *= rstd[:, None]
    return dx, (g * xhat).sum(axis=0)


@kernel(FAST, rows=(0, 1, 3, 4), parts=(5,))
def rms_norm_backward_kernel(g, x, w, rstd, dx, dw_parts):
    rows, d = x.shape
    n_chunks = dw_parts.shape[0]
    per = (rows + n_chunks - 1) // n_chunks
    for c in range(n_chunks):
        for r in range(c * per, min(rows, (c + 1) * per)):
            rs = rstd[r]
            s2 = F(0.0)
            for j in range(d):
                xh = x[r, j] * rs
                s2 += g[r, j] * w[j] * xh
                dw_parts[c, j] += g[r, j] * xh
            s2 /= F(d)
            for j in range(d):
                dx[r, j] = rs * (g[r, j] * w[j] - x[r, j] * rs * s2)


@dispatch(_rms_norm_backward)
def rms_norm_backward(g, x, w, rstd):
    rows, d = x.shape
    dx = np.empty_like(x)
    dw = np.zeros((chunks(rows), d), np.float32)
    rms_norm_backward_kernel(np.ascontiguousarray(g), x, w, rstd, dx, dw)
    return dx, dw.sum(axis=0)


# -- channel norm (batch_norm, group_norm, instance_norm) -----------------------------------------------
def channel_blocks(a, groups):
    """The (A, R, K, S) view of a contiguous (N, C, ...) array: (N, C, 1, HW) for per-channel
    statistics (``groups`` None: batch norm), (1, N G, C / G, HW) for per-(sample, group) ones."""
    n, c = a.shape[:2]
    if groups is None:
        return a.reshape(n, c, 1, -1)
    return a.reshape(1, n * groups, c // groups, -1)


def per_block(v, groups, n):
    """A per-channel vector as the (R, K) array of :func:`channel_blocks`: (C, 1) for batch norm,
    v[(r mod G) C/G + k] for group norm's (N G, C / G)."""
    if groups is None:
        return v.reshape(-1, 1)
    return np.ascontiguousarray(np.broadcast_to(v.reshape(1, groups, -1), (n, groups, v.size // groups))
                                ).reshape(n * groups, -1)


_STAT_AXES = (0, 2, 3)


def _channel_norm_forward(x, w, b, eps):
    """(y, mean, var, rstd), statistics per r (biased variance), in float64 as the kernel keeps them"""
    xd = x.astype(np.float64, copy=False)
    mean = xd.mean(axis=_STAT_AXES)
    xc = xd - mean[:, None, None]
    var = (xc * xc).mean(axis=_STAT_AXES)
    rstd = 1 / np.sqrt(var + eps)
    y = xc * rstd[:, None, None] * w[:, :, None] + b[:, :, None]
    return y.astype(x.dtype, copy=False), mean, var, rstd


@kernel(FAST, rows=(0, 1, 2, 3, 4), offset=7, work=5)
def channel_norm_forward_kernel(mean, var, rstd, w, b, x, y, r0, eps):
    """for r = r0 ... r0 + len(mean) - 1 (a thread's range of the per-r arrays; x and y go whole).
    The statistics are float64 (a block can hold millions of elements) and kept so: the backward's
    cancellations need the mean as exactly as it was removed."""
    na, _, kk, ss = x.shape
    count = na * kk * ss
    for i in range(mean.size):
        r = r0 + i
        s = 0.0
        for a in range(na):
            for k in range(kk):
                for j in range(ss):
                    s += x[a, r, k, j]
        mu = s / count
        q = 0.0
        for a in range(na):
            for k in range(kk):
                for j in range(ss):
                    c = x[a, r, k, j] - mu
                    q += c * c
        v = q / count
        rs = 1.0 / np.sqrt(v + eps)
        mean[i], var[i], rstd[i] = mu, v, rs
        for a in range(na):
            for k in range(kk):
                wk, bk = np.float64(w[i, k]), np.float64(b[i, k])
                for j in range(ss):
                    y[a, r, k, j] = ((x[a, r, k, j] - mu) * rs) * wk + bk


@dispatch(_channel_norm_forward)
def channel_norm_forward(x, w, b, eps):
    if x.shape[3] == 1:  # a 2-D input (BatchNorm1d): NumPy's reductions vectorise there, the loops do not
        return _channel_norm_forward(x, w, b, eps)
    y = np.empty_like(x)
    mean, var, rstd = (np.empty(x.shape[1]) for _ in range(3))
    channel_norm_forward_kernel(mean, var, rstd, w, b, x, y, 0, float(eps))
    return y, mean, var, rstd


def _channel_norm_backward(g, x, w, mean, rstd):
    """(dx, dw, db), dw and db per (r, k); in float64 up to the stored dx, as the kernel"""
    g = g.astype(np.float64, copy=False)
    xhat = (x.astype(np.float64, copy=False) - mean[:, None, None]) * rstd[:, None, None]
    gw = g * w[:, :, None]
    dx = gw - gw.mean(axis=_STAT_AXES, keepdims=True)
    dx -= xhat * (gw * xhat).mean(axis=_STAT_AXES, keepdims=True)
    dx *= rstd[:, None, None]
    dw, db = (g * xhat).sum(axis=(0, 3)), g.sum(axis=(0, 3))
    return tuple(a.astype(x.dtype, copy=False) for a in (dx, dw, db))


@kernel(FAST, rows=(0, 1, 2, 3, 4), offset=8, work=6)
def channel_norm_backward_kernel(mean, rstd, w, dw, db, g, x, dx, r0):
    """In float64 up to the stored dx: dx is what is left after gw - mean(gw) - xhat mean(gw xhat)
    cancel, and with a loss that hardly depends on the block (the sum of ResNet-50's train-mode
    logits) float32 statistics here put its conv1 gradient 3.6% (of the largest entry) from the
    float64 one, where NumPy's float32 path and torchvision's are 1.4-1.6% away."""
    na, _, kk, ss = x.shape
    count = na * kk * ss
    for i in range(mean.size):
        r = r0 + i
        mu, rs = mean[i], rstd[i]
        s1 = 0.0
        s2 = 0.0
        for k in range(kk):
            sg = 0.0
            sgx = 0.0
            for a in range(na):
                for j in range(ss):
                    gj = np.float64(g[a, r, k, j])
                    sg += gj
                    sgx += gj * ((x[a, r, k, j] - mu) * rs)
            db[i, k], dw[i, k] = sg, sgx
            s1 += w[i, k] * sg
            s2 += w[i, k] * sgx
        m1, m2 = s1 / count, s2 / count
        for a in range(na):
            for k in range(kk):
                wk = np.float64(w[i, k])
                for j in range(ss):
                    dx[a, r, k, j] = rs * (g[a, r, k, j] * wk - m1 - ((x[a, r, k, j] - mu) * rs) * m2)


@dispatch(_channel_norm_backward, checked=3)  # (float64 stats)
def channel_norm_backward(g, x, w, mean, rstd):
    if x.shape[3] == 1:
        return _channel_norm_backward(g, x, w, mean, rstd)
    dx = np.empty_like(x)
    dw, db = (np.empty(w.shape, np.float32) for _ in range(2))
    channel_norm_backward_kernel(mean, rstd, w, dw, db, np.ascontiguousarray(g), x, dx, 0)
    return dx, dw, db
