"""Depthwise 2-d convolution (groups = channels, one k x k filter per channel) on raw arrays.

Shapes: xp (N, C, Hp, Wp), the input already zero-padded; w (C, kh, kw);
output (N, C, Ho, Wo). With stride s and dilation d::

    y[n, c, p, q]  = sum_{i,j} w[c, i, j] xp[n, c, p s + i d, q s + j d]
    dxp[n, c, p s + i d, q s + j d] += w[c, i, j] gy[n, c, p, q]
    dw[c, i, j]    = sum_{n,p,q} gy[n, c, p, q] xp[n, c, p s + i d, q s + j d]

The general grouped convolution (im2col + one GEMM per group) spends its
time building columns for GEMMs with a single output row; here each tap is a
multiply-add over whole planes. The NumPy twin does one strided slice per tap
(kh * kw vectorised passes); the numba kernel walks each (n, c) plane once per
tap with the plane in cache and no temporaries.

``depthwise_forward`` / ``depthwise_backward`` dispatch: the kernel when
``kernels.enabled_by_env()`` and numba imports, else the NumPy twin.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import kernels

__all__ = ["depthwise_backward", "depthwise_backward_numpy", "depthwise_forward", "depthwise_forward_numpy"]


def _tap(xp, i, j, out_hw, stride, dilation):
    """The (N, C, Ho, Wo) view of xp that tap (i, j) multiplies."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


# -- the NumPy twin --------------------------------------------------------------------------------------
def depthwise_forward_numpy(xp, w, out_hw, stride, dilation):
    y = np.zeros(xp.shape[:2] + tuple(out_hw), xp.dtype)
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            y += w[None, :, i, j, None, None] * _tap(xp, i, j, out_hw, stride, dilation)
    return y


def depthwise_backward_numpy(grad, xp, w, stride, dilation, need_x=True, need_w=True):
    """(dxp (N, C, Hp, Wp) or None, dw (C, kh, kw) or None)."""
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


# -- the numba kernels -----------------------------------------------------------------------------------
def _forward_kernel(xp, w, y, sh, sw, dh, dw):  # pragma: no cover - compiled
    N, C, Ho, Wo = y.shape
    kh, kw = w.shape[1], w.shape[2]
    for n in range(N):
        for c in range(C):
            for p in range(Ho):
                for q in range(Wo):
                    y[n, c, p, q] = 0.0
            for i in range(kh):
                for j in range(kw):
                    wt = w[c, i, j]
                    for p in range(Ho):
                        row = p * sh + i * dh
                        for q in range(Wo):
                            y[n, c, p, q] += wt * xp[n, c, row, q * sw + j * dw]


def _backward_kernel(grad, xp, w, gxp, gw, sh, sw, dh, dw, need_x, need_w):  # pragma: no cover - compiled
    N, C, Ho, Wo = grad.shape
    kh, kw = w.shape[1], w.shape[2]
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                wt = w[c, i, j]
                acc = 0.0
                for n in range(N):
                    for p in range(Ho):
                        row = p * sh + i * dh
                        for q in range(Wo):
                            g = grad[n, c, p, q]
                            if need_x:
                                gxp[n, c, row, q * sw + j * dw] += wt * g
                            if need_w:
                                acc += g * xp[n, c, row, q * sw + j * dw]
                if need_w:
                    gw[c, i, j] = acc


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

                options = dict(cache=True, fastmath=True, error_model="numpy", nogil=True)
                _compiled = (njit(**options)(_forward_kernel), njit(**options)(_backward_kernel))
            except ImportError:
                _compiled = False
    return _compiled or None


def depthwise_forward(xp, w, out_hw, stride=(1, 1), dilation=(1, 1), use_kernel: bool | None = None):
    """y (N, C, Ho, Wo) from the padded input xp and the filters w (C, kh, kw)."""
    compiled = _kernels() if use_kernel is not False else None
    if compiled is None or not _compilable(xp):
        return depthwise_forward_numpy(xp, w, out_hw, stride, dilation)
    y = np.empty(xp.shape[:2] + tuple(out_hw), xp.dtype)
    compiled[0](np.ascontiguousarray(xp), np.ascontiguousarray(w, xp.dtype), y, *stride, *dilation)
    return y


def depthwise_backward(grad, xp, w, stride=(1, 1), dilation=(1, 1), need_x=True, need_w=True,
                       use_kernel: bool | None = None):
    """(dxp or None, dw or None) for the upstream gradient (N, C, Ho, Wo)."""
    compiled = _kernels() if use_kernel is not False else None
    if compiled is None or not _compilable(xp):
        return depthwise_backward_numpy(grad, xp, w, stride, dilation, need_x, need_w)
    gxp = np.zeros_like(xp) if need_x else np.zeros((1, 1, 1, 1), xp.dtype)
    gw = np.empty_like(w) if need_w else np.zeros((1, 1, 1), w.dtype)
    compiled[1](np.ascontiguousarray(grad, xp.dtype), np.ascontiguousarray(xp), np.ascontiguousarray(w, xp.dtype),
                gxp, gw, *stride, *dilation, need_x, need_w)
    return (gxp if need_x else None), (gw if need_w else None)
