"""Max pooling: each window's argmax (torch's per-plane flat index), and the scatter of the
gradient back to it.

    y[n, c, p] = x[n, c].flat[index[n, c, p]]       dL/dx[n, c].flat[index] (+)= dL/dy

When windows overlap, one pixel can win several windows, so the scatter adds.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import EXACT, inline, kernel
from neural_arch.backend.kernels.conv import pad_hw


def tiles(kernel_hw, stride, pads, dilation, out_hw, in_hw) -> bool:
    """Do the windows tile (a crop of) the input exactly: kernel == stride, no padding, no dilation?"""
    return (tuple(kernel_hw) == tuple(stride) and not any(pads) and tuple(dilation) == (1, 1)
            and out_hw[0] * kernel_hw[0] <= in_hw[0] and out_hw[1] * kernel_hw[1] <= in_hw[1])


def _max_pool2d_index(x, kernel_hw, stride, padding, dilation, out_hw):
    """(index, None): the flat per-plane index (h W + w) of the first maximum of every window, shape
    (N, C, Ho, Wo) (the kernel also returns the maxima; here the caller gathers them).
    torch's rules: a NaN wins over everything (the last NaN of the window), and a window whose real
    pixels are all -inf reports its first real pixel."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = kernel_hw, stride, padding, dilation, out_hw
    n, c, h, w = x.shape
    if tiles(kernel_hw, stride, (ph, pw), dilation, out_hw, (h, w)):
        flat = x[:, :, : ho * kh, : wo * kw].reshape(n, c, ho, kh, wo, kw).transpose(0, 1, 2, 4, 3, 5)
    else:
        low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        bottom = max(0, (ho - 1) * sh + dh * (kh - 1) + 1 - h - ph)
        right = max(0, (wo - 1) * sw + dw * (kw - 1) + 1 - w - pw)
        xp = pad_hw(x, (ph, bottom, pw, right), value=low)
        win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
        flat = win[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, ::dh, ::dw]
    taps = flat.reshape(n, c, ho, wo, kh * kw)
    arg = taps.argmax(axis=-1)  # the first maximum, or the first NaN
    if taps.dtype.kind == "f":
        nan = np.isnan(taps)
        if nan.any():  # torch's running max takes every NaN it meets: a window's last NaN wins
            arg = np.where(nan.any(axis=-1), kh * kw - 1 - nan[..., ::-1].argmax(axis=-1), arg)
    ki, kj = np.divmod(arg, kw)
    r0, c0 = np.arange(ho) * sh - ph, np.arange(wo) * sw - pw
    rows, cols = r0[:, None] + ki * dh, c0 + kj * dw
    if ph or pw:
        # A window whose real pixels are all -inf "wins" at a padding pixel; torch reports the
        # window's first real pixel then (its running max starts there).
        first_r = np.where(r0 < 0, r0 + (-r0 + dh - 1) // dh * dh, r0)[:, None]
        first_c = np.where(c0 < 0, c0 + (-c0 + dw - 1) // dw * dw, c0)
        pad_win = (rows < 0) | (rows >= h) | (cols < 0) | (cols >= w)
        rows = np.where(pad_win, first_r, rows)
        cols = np.where(pad_win, first_c, cols)
    return rows * w + cols, None


@inline(EXACT)
def _later(v, at_v, best, at):
    """(best, at) after a candidate v at at_v that comes later in the window: v wins if greater or NaN (torch's
    test), as selects (on real data that branch is taken at random, and mispredicted)."""
    take = (v > best) | (v != v)
    return (v if take else best), (at_v if take else at)


@kernel(EXACT, rows=(0, 1, 2))
def max_pool2d_index_kernel(x, index, values, kh, kw, sh, sw, ph, pw, dh, dw):
    """index[p, oh, ow]: the flat position (h W + w) in plane x[p] of the maximum of the window at
    (oh sh - ph, ow sw - pw), taps dh, dw apart (padding taps skipped); values[p, oh, ow]: that maximum.
    torch's rules: the first maximum wins a tie, a NaN wins over everything (the last NaN of the
    window), and a window whose real pixels are all -inf reports its first real pixel.
    (No fastmath here: it would drop the NaN tests.)"""
    planes, height, width = x.shape
    _, ho, wo = index.shape
    # the taps of each window row / column that fall inside the image (so no test per tap), once per call
    i_lo, i_hi = np.empty(ho, np.int64), np.empty(ho, np.int64)
    for oh in range(ho):
        top = oh * sh - ph
        i_lo[oh], i_hi[oh] = max(0, (-top + dh - 1) // dh), min(kh, (height - 1 - top) // dh + 1)
    j_lo, j_hi = np.empty(wo, np.int64), np.empty(wo, np.int64)
    for ow in range(wo):
        left = ow * sw - pw
        j_lo[ow], j_hi[ow] = max(0, (-left + dw - 1) // dw), min(kw, (width - 1 - left) // dw + 1)
    for p in range(planes):
        for oh in range(ho):
            top = oh * sh - ph
            i0, i1 = i_lo[oh], i_hi[oh]
            for ow in range(wo):
                left = ow * sw - pw
                j0, j1 = j_lo[ow], j_hi[ow]
                if i1 - i0 == 2 and j1 - j0 == 2 and kh == 2 and kw == 2 and dh == 1 and dw == 1:
                    # a whole 2x2 window (MaxPool2d(2)'s every window), unrolled: taps in torch's order
                    r, c = top, left
                    best, at = x[p, r, c], r * width + c
                    v = x[p, r, c + 1]
                    if v > best or v != v:
                        best, at = v, r * width + c + 1
                    v = x[p, r + 1, c]
                    if v > best or v != v:
                        best, at = v, (r + 1) * width + c
                    v = x[p, r + 1, c + 1]
                    if v > best or v != v:
                        best, at = v, (r + 1) * width + c + 1
                    index[p, oh, ow] = at
                    values[p, oh, ow] = best
                    continue
                if i1 - i0 == 3 and j1 - j0 == 3 and kh == 3 and kw == 3 and dh == 1 and dw == 1:
                    # a whole 3x3 window (ResNet's stem pool): each row's best, then the rows', so the
                    # chains of dependent compares are 4 long, not 8. Merging an earlier (b, a) with a later
                    # one by the same test keeps torch's rules: the first maximum, the last NaN.
                    a0 = top * width + left
                    b, a = _later(x[p, top, left + 1], a0 + 1, x[p, top, left], a0)
                    b, a = _later(x[p, top, left + 2], a0 + 2, b, a)
                    b1, a1 = _later(x[p, top + 1, left + 1], a0 + width + 1, x[p, top + 1, left], a0 + width)
                    b1, a1 = _later(x[p, top + 1, left + 2], a0 + width + 2, b1, a1)
                    b2, a2 = _later(x[p, top + 2, left + 1], a0 + 2 * width + 1, x[p, top + 2, left], a0 + 2 * width)
                    b2, a2 = _later(x[p, top + 2, left + 2], a0 + 2 * width + 2, b2, a2)
                    b, a = _later(b1, a1, b, a)
                    b, a = _later(b2, a2, b, a)
                    index[p, oh, ow], values[p, oh, ow] = a, b
                    continue
                best = x[p, top + i0 * dh, left + j0 * dw]
                at = (top + i0 * dh) * width + left + j0 * dw
                for i in range(i0, i1):
                    r = top + i * dh
                    for j in range(j0, j1):
                        v = x[p, r, left + j * dw]
                        if v > best or v != v:  # torch's test: the last NaN of a window wins
                            best = v
                            at = r * width + left + j * dw
                index[p, oh, ow] = at
                values[p, oh, ow] = best


@kernel(EXACT, rows=(0, 1, 2))
def max_pool_scatter_kernel(index, g, gx):
    """gx[p].flat[index[p, k]] += g[p, k]: max pooling's gradient, plane by plane (so overlapping
    windows that share a winner add up; threads own whole planes). gx starts at zero."""
    planes, n = index.shape
    for p in range(planes):
        for k in range(n):
            gx[p, index[p, k]] += g[p, k]


@dispatch(_max_pool2d_index)
def max_pool2d_index(x, kernel_hw, stride, padding, dilation, out_hw):
    if not x.flags.c_contiguous:
        return _max_pool2d_index(x, kernel_hw, stride, padding, dilation, out_hw)
    n, c, h, w = x.shape
    (ho, wo) = out_hw
    index, values = np.empty((n * c, ho, wo), np.int64), np.empty((n * c, ho, wo), x.dtype)
    max_pool2d_index_kernel(x.reshape(n * c, h, w), index, values, *kernel_hw, *stride, *padding, *dilation)
    return index.reshape(n, c, ho, wo), values.reshape(n, c, ho, wo)


def _max_pool_scatter(g, index, xshape, overlapping):
    """dL/dx of shape ``xshape`` from dL/dy and the windows' argmax ``index`` (N, C, ...)"""
    n, c = xshape[:2]
    plane = int(np.prod(xshape[2:]))
    gidx = (index.reshape(n * c, -1) + (np.arange(n * c, dtype=np.int64) * plane)[:, None]).reshape(-1)
    size = n * c * plane
    if overlapping:
        gx = np.bincount(gidx, weights=g.reshape(-1), minlength=size).astype(g.dtype, copy=False)
    else:
        gx = np.zeros(size, dtype=g.dtype)
        gx[gidx] = g.reshape(-1)
    return gx.reshape(xshape)


@dispatch(_max_pool_scatter)
def max_pool_scatter(g, index, xshape, overlapping):
    n, c = xshape[:2]
    gx = np.zeros(xshape, np.float32)
    max_pool_scatter_kernel(index.reshape(n * c, -1), np.ascontiguousarray(g).reshape(n * c, -1), gx.reshape(n * c, -1))
    return gx
