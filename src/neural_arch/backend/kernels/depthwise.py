"""Depthwise 2-d convolution (groups = channels, one k x k filter per channel) on raw arrays.

Shapes: xp (N, C, Hp, Wp), the input already zero-padded; w (C, kh, kw);
output (N, C, Ho, Wo). With stride s and dilation d::

    y[n, c, p, q]  = sum_{i,j} w[c, i, j] xp[n, c, p s + i d, q s + j d]
    dxp[n, c, p s + i d, q s + j d] += w[c, i, j] gy[n, c, p, q]
    dw[c, i, j]    = sum_{n,p,q} gy[n, c, p, q] xp[n, c, p s + i d, q s + j d]

The general grouped convolution (im2col + one GEMM per group) spends its time building columns
for GEMMs with a single output row; here each tap is a multiply-add over whole planes. The NumPy
twin does one strided slice per tap (kh * kw vectorised passes); the kernel walks each (n, c)
plane once per tap with the plane in cache and no temporaries. Threads split the channels: each
owns its filters, its output planes and its input-gradient planes, so nothing is shared.
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


@dispatch(_depthwise_forward)
def depthwise_forward(xp, w, out_hw, stride, dilation):
    xp = np.ascontiguousarray(xp)
    y = np.empty(xp.shape[:2] + tuple(out_hw), np.float32)
    depthwise_forward_kernel(np.ascontiguousarray(w), xp, y, 0, *stride, *dilation)
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


@dispatch(_depthwise_backward)
def depthwise_backward(grad, xp, w, stride, dilation, need_x, need_w):
    xp = np.ascontiguousarray(xp)
    w = np.ascontiguousarray(w)
    gxp = np.zeros_like(xp) if need_x else np.zeros((1, 1, 1, 1), np.float32)  # (a placeholder when not needed)
    gw = np.zeros_like(w)
    depthwise_backward_kernel(w, gw, np.ascontiguousarray(grad), xp, gxp, 0, *stride, *dilation,
                              bool(need_x), bool(need_w))
    return (gxp if need_x else None), (gw if need_w else None)
