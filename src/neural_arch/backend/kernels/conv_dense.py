"""Convolution of tiny images as one dense product: the linear map from a whole input image to a whole output.

Per image, a convolution is a linear map from the C P input values (P = H W pixels) to the O Q outputs
(Q = Ho Wo pixels). Written as a matrix (the filter "expanded"),

    Wd[(o, q), (p, c)] = W[o, c, t(q, p)]      (0 where no tap t of output pixel q reads input pixel p)
    y[n, (o, q)]       = sum_(p, c) Wd[(o, q), (p, c)] x[n, c, p]     (y as it lies in NCHW)

    dL/dx = dL/dy Wd,     dL/dWd = dL/dy^T x,     dL/dW[o, c, t] = sum of dL/dWd[(o, q), (c, p)] over t(q, p) = t

Each GEMM has O Q C P multiply-adds per image against im2col's O Q C kh kw, so this pays where an image has
fewer pixels than the kernel taps (P < kh kw) and the batch is large enough to repay expanding the filter
once per call (``conv_algorithms.plan_for`` decides): ResNet's last stage, 2x2 images under a 3x3 kernel with
padding 1, where 5 of im2col's 9 columns per output pixel are padding. The products read x channels-last
(a copy of the small image batch, so that the expanded filter's rows are runs of C) and write y in NCHW as
it lies; the batch is their short axis, so they split over the threads by the filter's rows or columns
(``gemm.matmul``), each weight read once. The forward leaves the expanded filter for the backward
(``kept``): expanding it is a memory-bound pass over Q P / (kh kw) times the filter's bytes.

The tap of each (q, p) pair is one integer table (:func:`tap_table`; a dilation or stride only changes
which pair gets which tap). ``expand`` and ``fold`` are kernels with NumPy twins.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from neural_arch.backend import gemm
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, U, kernel


def applies(in_hw, kernel_hw, groups) -> bool:
    """Whether the dense product does fewer multiply-adds than im2col: fewer input pixels than taps
    (no groups: their filter would be block-diagonal)."""
    return groups == 1 and in_hw[0] * in_hw[1] < kernel_hw[0] * kernel_hw[1]


@lru_cache(maxsize=64)
def tap_table(in_hw, kernel_hw, stride, pads, dilation, out_hw) -> np.ndarray:
    """t[q, p]: the flat tap i kw + j by which output pixel q = (h, w) reads input pixel p = (r, s)
    (r = h sh + i dh - top, s = w sw + j dw - left), or -1 when none does. Read-only (cached)."""
    (height, width), (kh, kw), (sh, sw), (dh, dw), (ho, wo) = in_hw, kernel_hw, stride, dilation, out_hw
    t = np.full((ho, wo, height, width), -1, np.int64)
    for i in range(kh):
        for j in range(kw):
            for h in range(ho):
                r = h * sh + i * dh - pads[0]
                if not 0 <= r < height:
                    continue
                for w in range(wo):
                    s = w * sw + j * dw - pads[2]
                    if 0 <= s < width:
                        t[h, w, r, s] = i * kw + j
    t = t.reshape(ho * wo, height * width)
    t.flags.writeable = False
    return t


# -- the NumPy spelling ------------------------------------------------------------------------------------
def _expand(w, taps):
    """Wd[o, q, p, c] = w[o, c, taps[q, p]] (0 where the tap is -1); ``w`` is (O, C, kh kw). The input
    channels last, so that each (q, p) pair of a row is one contiguous run of a tap's weights."""
    o, c, kk = w.shape
    padded = np.concatenate([w, np.zeros((o, c, 1), w.dtype)], axis=2)  # tap -1 reads the zero
    return np.ascontiguousarray(padded[:, :, taps].transpose(0, 2, 3, 1))


def _fold(dense_grad, taps, kk):
    """gw[o, c, t] = sum of dense_grad[o, q, p, c] over the pairs with taps[q, p] = t; ``kk`` taps."""
    o, q, p, c = dense_grad.shape
    gw = np.zeros((o, c, kk + 1), dense_grad.dtype)
    for qi in range(q):
        for pi in range(p):
            gw[:, :, taps[qi, pi]] += dense_grad[:, qi, pi, :]
    return gw[:, :, :kk]


# -- the kernels -------------------------------------------------------------------------------------------
@kernel(FAST, rows=(0, 2))
def expand_rows(w, taps, big):
    """big[o, q, p, c] = w[o, c, taps[q, p]], 0 where the tap is -1: one output channel's filter, turned
    taps-first into a scratch (C kh kw floats, in cache), then copied out as one run of C per (q, p);
    threads split the output channels."""
    no, nc, kk = w.shape
    nq, npix = taps.shape
    turned = np.zeros((kk + 1, nc), np.float32)  # row kk stays 0: the pairs no tap links
    for o in range(no):
        for c in range(nc):
            for t in range(kk):
                turned[t, c] = w[o, c, t]
        for q in range(nq):
            for p in range(npix):
                t = taps[q, p]
                row = U(kk) if t < 0 else U(t)
                for c in range(U(nc)):
                    big[o, q, p, c] = turned[row, c]


@kernel(FAST, rows=(0, 2))
def fold_rows(dense_grad, taps, gw):
    """gw[o, c, t] = sum of dense_grad[o, q, p, c] over taps[q, p] = t (pairs with tap -1 dropped): the
    adjoint of expand_rows, summed taps-first into a scratch and turned back; threads split the output channels."""
    no, nq, npix, nc = dense_grad.shape
    kk = gw.shape[2]
    acc = np.empty((kk, nc), np.float32)
    for o in range(no):
        acc[:] = F(0.0)
        for q in range(nq):
            for p in range(npix):
                t = taps[q, p]
                if t >= 0:
                    for c in range(U(nc)):
                        acc[t, c] += dense_grad[o, q, p, c]
        for c in range(nc):
            for t in range(kk):
                gw[o, c, t] = acc[t, c]


@dispatch(_expand, checked=1)
def expand(w, taps):
    o, c, _ = w.shape
    big = np.empty((o,) + taps.shape + (c,), np.float32)
    expand_rows(np.ascontiguousarray(w), taps, big)
    return big


@dispatch(_fold, checked=1)
def fold(dense_grad, taps, kk):
    gw = np.empty(dense_grad.shape[:1] + dense_grad.shape[3:] + (kk,), np.float32)
    fold_rows(np.ascontiguousarray(dense_grad), taps, gw)
    return gw


# -- the convolution ---------------------------------------------------------------------------------------
def _channels_last(x):
    """(N, C, H, W) -> (N, H W C) contiguous: the dense products' operand (a copy of a small image batch)"""
    n, c = x.shape[:2]
    return np.ascontiguousarray(x.reshape(n, c, -1).transpose(0, 2, 1)).reshape(n, -1)


def convolve(x, w, taps, out_hw, kept=None, matmul=gemm.matmul):
    """y (N, O, Ho, Wo) = conv(x) for x (N, C, H, W) and w (O, C, kh, kw), by the expanded filter; with a
    dict ``kept`` the expanded filter is left in it for :func:`gradients`. ``matmul``: the 2-D product
    (split over the threads), ``gemm.matmul`` or the OpenBLAS one ``conv_algorithms.products()`` picks."""
    n, o = x.shape[0], w.shape[0]
    big = expand(w.reshape(o, w.shape[1], -1), taps)
    if kept is not None:
        kept["dense"] = big
    return matmul(_channels_last(x), big.reshape(o * taps.shape[0], -1).T).reshape((n, o) + tuple(out_hw))


def gradients(grad, x, w, taps, need_x, need_w, kept=None, matmul=gemm.matmul):
    """(dL/dx or None, dL/dW or None) of :func:`convolve` for dL/dy = ``grad`` (N, O, Ho, Wo); the expanded
    filter is taken from ``kept`` when the forward left it there."""
    (n, o, c), (height, width) = grad.shape[:2] + w.shape[1:2], x.shape[2:]
    g = np.ascontiguousarray(grad).reshape(n, -1)
    gx = gw = None
    if need_x:
        big = kept.get("dense") if kept else None
        if big is None:
            big = expand(w.reshape(o, c, -1), taps)
        gxt = matmul(g, big.reshape(g.shape[1], -1)).reshape(n, height * width, c)
        gx = np.ascontiguousarray(gxt.transpose(0, 2, 1)).reshape(x.shape)
    if need_w:
        dense_grad = matmul(g.T, _channels_last(x))
        gw = fold(dense_grad.reshape((o,) + taps.shape + (c,)), taps, w.shape[2] * w.shape[3]).reshape(w.shape)
    return gx, gw
