"""Depthwise 2-d convolution (groups = channels, one k x k filter per channel) on raw arrays.

Shapes: xp (N, C, Hp, Wp), the input already zero-padded; w (C, kh, kw);
output (N, C, Ho, Wo). With stride s and dilation d::

    y[n, c, p, q]  = sum_{i,j} w[c, i, j] xp[n, c, p s + i d, q s + j d]
    dxp[n, c, p s + i d, q s + j d] += w[c, i, j] gy[n, c, p, q]
    dw[c, i, j]    = sum_{n,p,q} gy[n, c, p, q] xp[n, c, p s + i d, q s + j d]

The general grouped convolution (im2col + one GEMM per group) spends its time building columns
for GEMMs with a single output row; here each tap is a multiply-add over whole planes. The NumPy
twin does one strided slice per tap (kh * kw vectorised passes); the kernels walk each (n, c)
plane once per tap with the plane in cache. Threads split the channels: each owns its filters,
its output planes and its input-gradient planes, so nothing is shared.

At unit stride the kernels treat a plane as one flat row of Hp * Wp values: output (p, q) is flat
position r = p Wp + q, and tap (i, j) reads r + i dh Wp + j dw, so each tap is one long contiguous
multiply-add (the Wp - Wo positions between output rows are computed and dropped), where a loop per
output row would run Wo (often 4 to 28) elements at a time. Strided convolutions take the loop per row.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, U, kernel

__all__ = ["depthwise_backward", "depthwise_forward"]


def _tap(xp, i, j, out_hw, stride, dilation):
    """The (N, C, Ho, Wo) view of xp that tap (i, j) multiplies."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


# -- forward -------------------------------------------------------------------------------------------------
def _depthwise_forward(xp, w, out_hw, stride, dilation):
    """y (N, C, Ho, Wo) from the padded input xp (N, C, Hp, Wp) and the filters w (C, kh, kw)."""
    y = np.zeros(xp.shape[:2] + tuple(out_hw), xp.dtype)
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            y += w[None, :, i, j, None, None] * _tap(xp, i, j, out_hw, stride, dilation)
    return y


@kernel(FAST, rows=(0,), offset=3, work=1)
def depthwise_forward_kernel(w, xp, y, c0, sh, sw, dh, dw):
    """y[n, c0 + c] = sum_{i,j} w[c, i, j] xp[n, c0 + c, p sh + i dh, q sw + j dw]: ``w`` is a thread's
    share of the filters and ``c0`` its first channel (xp and y are whole NCHW arrays)."""
    nc, kh, kw = w.shape
    nn, _, ho, wo = y.shape
    for c in range(nc):
        ch = c0 + c
        for n in range(nn):
            for p in range(ho):
                for q in range(wo):
                    y[n, ch, p, q] = F(0.0)
            for i in range(kh):
                for j in range(kw):
                    wt = w[c, i, j]
                    left = U(j * dw)
                    for p in range(ho):
                        r = p * sh + i * dh
                        if sw == 1:  # unit stride: the multiply-add vectorises
                            for q in range(U(wo)):
                                y[n, ch, p, q] += wt * xp[n, ch, r, q + left]
                        else:
                            for q in range(U(wo)):
                                y[n, ch, p, q] += wt * xp[n, ch, r, q * U(sw) + left]


@kernel(FAST, rows=(0,), offset=3, work=1)
def depthwise_forward_flat_kernel(w, xf, y, c0, dh, dw, wp):
    """Unit stride: xf (N, C, Hp * Wp) the flattened padded planes; the flat sums go through a buffer of
    (Ho - 1) Wp + Wo values, whose positions p Wp + q (q < Wo) are y[n, c0 + c, p, q]."""
    nc, kh, kw = w.shape
    nn, _, ho, wo = y.shape
    span = (ho - 1) * wp + wo
    buf = np.empty_like(xf[0, 0, :span])
    for c in range(nc):
        ch = c0 + c
        for n in range(nn):
            buf[:] = F(0.0)
            for i in range(kh):
                for j in range(kw):
                    wt = w[c, i, j]
                    off = U(i * dh * wp + j * dw)
                    for r in range(U(span)):
                        buf[r] += wt * xf[n, ch, r + off]
            for p in range(ho):
                for q in range(wo):
                    y[n, ch, p, q] = buf[p * wp + q]


@dispatch(_depthwise_forward)
def depthwise_forward(xp, w, out_hw, stride, dilation):
    xp = np.ascontiguousarray(xp)
    w = np.ascontiguousarray(w)
    y = np.empty(xp.shape[:2] + tuple(out_hw), np.float32)
    if tuple(stride) == (1, 1):
        n, c, hp, wp = xp.shape
        depthwise_forward_flat_kernel(w, xp.reshape(n, c, hp * wp), y, 0, *dilation, wp)
    else:
        depthwise_forward_kernel(w, xp, y, 0, *stride, *dilation)
    return y


# -- backward ------------------------------------------------------------------------------------------------
def _depthwise_backward(grad, xp, w, stride, dilation, need_x, need_w):
    """(dxp (N, C, Hp, Wp) or None, dw (C, kh, kw) or None) for the upstream gradient (N, C, Ho, Wo)."""
    out_hw = grad.shape[2:]
    gxp = np.zeros_like(xp) if need_x else None
    gw = np.empty_like(w) if need_w else None
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            if need_x:
                _tap(gxp, i, j, out_hw, stride, dilation)[...] += w[None, :, i, j, None, None] * grad
            if need_w:
                gw[:, i, j] = np.einsum("nchw,nchw->c", grad, _tap(xp, i, j, out_hw, stride, dilation))
    return gxp, gw


@kernel(FAST, rows=(0, 1), offset=5, work=2)
def depthwise_backward_kernel(w, gw, grad, xp, gxp, c0, sh, sw, dh, dw, need_x, need_w):
    """gxp[n, c0 + c] (zeros on entry) and gw[c] for a thread's share of the channels (w, gw; c0 its first).

    The taps are the inner loops of each (n, c) plane, so a plane's grad, xp and gxp rows stay in cache
    across the kh * kw taps (a loop over the whole batch per tap re-read them from memory each time).
    dw sums each output row in float32 (vectorised) and the rows in float64: N Ho Wo terms in all."""
    nc, kh, kw = w.shape
    nn, _, ho, wo = grad.shape
    acc = np.zeros((kh, kw), np.float64)
    for c in range(nc):
        ch = c0 + c
        acc[:, :] = 0.0
        for n in range(nn):
            for i in range(kh):
                for j in range(kw):
                    wt = w[c, i, j]
                    left = U(j * dw)
                    plane = 0.0
                    for p in range(ho):
                        r = p * sh + i * dh
                        if need_x:
                            if sw == 1:
                                for q in range(U(wo)):
                                    gxp[n, ch, r, q + left] += wt * grad[n, ch, p, q]
                            else:
                                for q in range(U(wo)):
                                    gxp[n, ch, r, q * U(sw) + left] += wt * grad[n, ch, p, q]
                        if need_w:
                            s = F(0.0)
                            if sw == 1:
                                for q in range(U(wo)):
                                    s += grad[n, ch, p, q] * xp[n, ch, r, q + left]
                            else:
                                for q in range(U(wo)):
                                    s += grad[n, ch, p, q] * xp[n, ch, r, q * U(sw) + left]
                            plane += s
                    acc[i, j] += plane
        if need_w:
            for i in range(kh):
                for j in range(kw):
                    gw[c, i, j] = acc[i, j]


@kernel(FAST, rows=(0, 1), offset=5, work=2)
def depthwise_backward_flat_kernel(w, gw, grad, xf, gxf, c0, dh, dw, wp, need_x, need_w):
    """Unit stride, planes flattened (xf, gxf: (N, C, Hp * Wp)): each (n, c) plane's gradient is laid out
    at the flat output positions p Wp + q with zeros between the rows, then every tap is one contiguous
    pass: gxf[r + off] += w[c, i, j] g[r] and dw[c, i, j] += sum_r g[r] xf[r + off] (off = i dh Wp + j dw;
    the zeros make the dropped positions add nothing). dw sums a plane in float32, the planes in float64."""
    nc, kh, kw = w.shape
    nn, _, ho, wo = grad.shape
    span = (ho - 1) * wp + wo
    g = np.zeros_like(xf[0, 0, :span])
    acc = np.zeros((kh, kw), np.float64)
    for c in range(nc):
        ch = c0 + c
        acc[:, :] = 0.0
        for n in range(nn):
            for p in range(ho):
                for q in range(wo):
                    g[p * wp + q] = grad[n, ch, p, q]
            for i in range(kh):
                for j in range(kw):
                    off = U(i * dh * wp + j * dw)
                    if need_x:
                        wt = w[c, i, j]
                        for r in range(U(span)):
                            gxf[n, ch, r + off] += wt * g[r]
                    if need_w:
                        s = F(0.0)
                        for r in range(U(span)):
                            s += g[r] * xf[n, ch, r + off]
                        acc[i, j] += s
        if need_w:
            for i in range(kh):
                for j in range(kw):
                    gw[c, i, j] = acc[i, j]


@dispatch(_depthwise_backward)
def depthwise_backward(grad, xp, w, stride, dilation, need_x, need_w):
    xp = np.ascontiguousarray(xp)
    w = np.ascontiguousarray(w)
    grad = np.ascontiguousarray(grad)
    gxp = np.zeros_like(xp) if need_x else np.zeros((1, 1, 1, 1), np.float32)  # (a placeholder when not needed)
    gw = np.zeros_like(w)
    if tuple(stride) == (1, 1):
        n, c, hp, wp = xp.shape
        flat = (n, c, hp * wp)
        depthwise_backward_flat_kernel(w, gw, grad, xp.reshape(flat), gxp.reshape(flat) if need_x else
                                       gxp.reshape(1, 1, 1), 0, *dilation, wp, bool(need_x), bool(need_w))
    else:
        depthwise_backward_kernel(w, gw, grad, xp, gxp, 0, *stride, *dilation, bool(need_x), bool(need_w))
    return (gxp if need_x else None), (gw if need_w else None)
