"""Convolution as im2col + GEMM, and its adjoint col2im.

    cols[(c, i, j), (n, h, w)] = xpad[n, c, h sh + i dh, w sw + j dw]      (im2col, a copy)
    y[o, (n, h, w)]            = sum_(c,i,j) W[o, (c, i, j)] cols[(c, i, j), (n, h, w)]
    dL/dW = dL/dy cols^T,    dL/dx = col2im(W^T dL/dy)

The batch sits in the GEMMs' long axis, (C kh kw, N Ho Wo), so each product is one large BLAS
call (per group) instead of N small ones; the price is a transpose of the output and of dL/dy
between NCHW and CNHW, cheap next to the columns. Groups split C and O into G blocks: the GEMMs
gain a batch axis of size G.

The NumPy twin copies the columns with ``sliding_window_view`` and adds them back one strided
slice per kernel tap. The kernel path copies them with numba loops (padding read as zeros, the
gradient written straight into NCHW), and each thread takes its own range of images
(:func:`image_ranges`), a few at a time (``policy.conv_chunk_bytes`` of columns), so that the columns stay
in cache between the copy and the GEMMs and nothing is joined until the end. With unit strides
and an output as wide as the input (3x3, padding 1) each tap's plane of columns is one
contiguous run of the input plane, copied (and added back) as one long loop: rows of 28 floats
are too short for the vector units. dL/dW copies the columns again instead of keeping the
forward's: a copy from cache costs less than reading the whole batch's columns back from memory.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neural_arch.backend import gemm, threads
from neural_arch.backend.kernels import conv_dense, winograd
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, F, U, inline, kernel
from neural_arch.backend.kernels.conv_algorithms import plan_for, products


def out_size(xshape, wshape, pads, stride, dilation) -> tuple:
    """(Ho, Wo) of a convolution"""
    hp, wp = xshape[2] + pads[0] + pads[1], xshape[3] + pads[2] + pads[3]
    kh, kw = wshape[2:]
    return (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1, (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1


# -- the NumPy spelling ------------------------------------------------------------------------------------
def im2col(xp, kernel_hw, stride, dilation, out_hw, batch_last=False):
    """Windows of a padded ``(N, C, Hp, Wp)`` array as a contiguous copy.

    ``cols[n, c, i, j, h, w] = xp[n, c, h*sh + i*dh, w*sw + j*dw]``, laid out as
    ``(N, C, kh, kw, Ho, Wo)``, or as ``(C, kh, kw, N, Ho, Wo)`` with ``batch_last`` (then
    ``(C*kh*kw, N*Ho*Wo)`` is a plain reshape: the whole batch is one GEMM operand).
    ``out_hw`` says how many windows to take along each axis (the buffer may be larger).
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_hw, stride, dilation, out_hw
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, ::dh, ::dw]  # (N, C, Ho, Wo, kh, kw)
    return np.ascontiguousarray(win.transpose((1, 4, 5, 0, 2, 3) if batch_last else (0, 1, 4, 5, 2, 3)))


def _col2im(cols, padded_hw, stride, dilation):
    """Adjoint of :func:`im2col`: add every column entry back to the pixel it was copied from.

    ``cols`` is ``(A, B, kh, kw, Ho, Wo)`` with any strides, (A, B) being (N, C) or (C, N);
    returns a zero-initialised ``(A, B, Hp, Wp)`` array of the sums, one strided slice add per tap.
    """
    a, b, kh, kw, ho, wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = np.zeros((a, b) + tuple(padded_hw), dtype=cols.dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + (ho - 1) * sh + 1, sh)
        for j in range(kw):
            out[:, :, rows, j * dw : j * dw + (wo - 1) * sw + 1 : sw] += cols[:, :, i, j]
    return out


def long_k_product(a, b, matmul=gemm.matmul, transposed=True):
    """a b^T for a (G, M, K), b (G, N, K) with K = N*Ho*Wo long: the weight gradient.

    ``transposed`` computes it as (b a^T)^T (the transpose comes back as a copy of the small result):
    BLAS runs that orientation much faster for a small (M, N) output and a long K; which one a shape
    takes is decided in ``conv_algorithms``."""
    if not transposed:
        return matmul(a, b.transpose(0, 2, 1))
    return np.ascontiguousarray(matmul(b, a.transpose(0, 2, 1)).transpose(0, 2, 1))


def pad_hw(x, pads, value=0.0):
    """Pad the last two axes by ``(top, bottom, left, right)``; no copy when all are 0."""
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="constant", constant_values=value)


def crop_hw(x, pads, hw):
    """The (H, W) = ``hw`` window of a padded array, past the top and left padding (a view)."""
    top, _, left, _ = pads
    return x[:, :, top : top + hw[0], left : left + hw[1]]


def _conv2d_forward(x, w, b, stride, pads, dilation, groups, kept=None):
    """y = conv2d(x, w) + b (NCHW); one im2col copy of the whole batch. ``kept``: a dict in which the
    kernel path may leave what it prepared from the weight for the backward (the twin leaves nothing)."""
    n, o, (kh, kw), cg = x.shape[0], w.shape[0], w.shape[2:], w.shape[1]
    ho, wo = out_size(x.shape, w.shape, pads, stride, dilation)
    cols = im2col(pad_hw(x, pads), (kh, kw), stride, dilation, (ho, wo), batch_last=True)
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    y = np.ascontiguousarray(gemm.matmul(wm, cols.reshape(groups, cg * kh * kw, n * ho * wo))
                             .reshape(o, n, ho, wo).transpose(1, 0, 2, 3))
    if b is not None:
        y += b.reshape(1, o, 1, 1)
    return y


def _conv2d_backward(grad, x, w, stride, pads, dilation, groups, need_x, need_w, kept=None):
    """(dL/dx or None, dL/dW or None); ``x`` may be any array of the input's shape (a broadcast view)
    when dL/dW is not needed; ``kept``: the dict the forward was given. ``grad`` may have fewer rows or
    columns than the convolution gives (conv_transpose2d's output_padding): the windows past them are left out."""
    n, o, ho, wo = grad.shape
    cg, kh, kw = w.shape[1:]
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    g = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(groups, o // groups, n * ho * wo)
    gx = gw = None
    if need_x:
        padded_hw = (x.shape[2] + pads[0] + pads[1], x.shape[3] + pads[2] + pads[3])
        gcols = gemm.matmul(wm.transpose(0, 2, 1), g).reshape((x.shape[1], kh, kw, n, ho, wo))
        gxp = col2im(gcols.transpose(0, 3, 1, 2, 4, 5), padded_hw, stride, dilation)  # (C, N, Hp, Wp)
        gx = np.ascontiguousarray(crop_hw(gxp, pads, x.shape[2:]).transpose(1, 0, 2, 3))
    if need_w:
        cols = im2col(pad_hw(x, pads), (kh, kw), stride, dilation, (ho, wo), batch_last=True)
        gw = long_k_product(g, cols.reshape(groups, cg * kh * kw, n * ho * wo)).reshape(w.shape)
    return gx, gw


# -- the kernels -------------------------------------------------------------------------------------------
@inline(FAST)
def _inside(start, step, count, size):
    """[lo, hi): the k in range(count) with 0 <= start + k step < size (hi <= lo when there are none)"""
    lo = max(0, (-start + step - 1) // step)
    hi = min(count, (size - 1 - start) // step + 1)
    return lo, max(lo, hi)


@kernel(FAST, rows=(0,), offset=2)
def im2col_copy(cols, x, c0, sh, sw, ph, pw, dh, dw):
    """cols[c, i, j, n, h, w] = x[n, c0 + c, h sh + i dh - ph, w sw + j dw - pw], 0 where that is padding.

    ``x`` is the NCHW input and ``cols`` the (C, kh, kw, N, Ho, Wo) buffer that reshapes to the GEMM
    operand (C kh kw, N Ho Wo); padding is read as zeros, never materialised. Threads split the
    channels (``c0`` is the first channel of a thread's share of ``cols``)."""
    nc, kh, kw, nn, ho, wo = cols.shape
    height, width = x.shape[2], x.shape[3]
    for c in range(nc):
        for i in range(kh):
            h_lo, h_hi = _inside(i * dh - ph, sh, ho, height)
            for j in range(kw):
                left = j * dw - pw
                w_lo, w_hi = _inside(left, sw, wo, width)
                for n in range(nn):
                    for h in range(ho):
                        if h < h_lo or h >= h_hi:
                            for w in range(wo):
                                cols[c, i, j, n, h, w] = F(0.0)
                            continue
                        r = h * sh + i * dh - ph
                        for w in range(w_lo):
                            cols[c, i, j, n, h, w] = F(0.0)
                        if sw == 1:  # unit stride: a contiguous copy
                            for w in range(U(w_lo), U(w_hi)):
                                cols[c, i, j, n, h, w] = x[n, c0 + c, r, w + U(left)]
                        else:
                            for w in range(U(w_lo), U(w_hi)):
                                cols[c, i, j, n, h, w] = x[n, c0 + c, r, w * U(sw) + U(left)]
                        for w in range(w_hi, wo):
                            cols[c, i, j, n, h, w] = F(0.0)


@inline(FAST)
def _flat_run(i, j, ho, height, width, ph, pw, dh, dw):
    """Where tap (i, j) of a unit-stride, Wo = W convolution reads a flat input plane.

    Returns (h_lo, h_hi, w_lo, w_hi, q_lo, q_hi, shift): the output rows and columns whose tap pixel is
    inside the image, and the run [q_lo, q_hi) of the flat output plane that maps to input position
    q + shift (shift = (i dh - ph) W + j dw - pw). q_hi <= q_lo when the tap falls wholly on padding."""
    top, left = i * dh - ph, j * dw - pw
    h_lo, h_hi = _inside(top, 1, ho, height)
    w_lo, w_hi = _inside(left, 1, width, width)
    if h_lo >= h_hi or w_lo >= w_hi:
        return h_lo, h_hi, w_lo, w_hi, 0, 0, 0
    return h_lo, h_hi, w_lo, w_hi, h_lo * width + w_lo, (h_hi - 1) * width + w_hi, top * width + left


@inline(FAST)
def _zero_wrapped(plane, width, h_lo, h_hi, w_lo, w_hi):
    """Zero the entries of a flat tap plane (rows h_lo..h_hi) whose column is outside [w_lo, w_hi):
    in a run that crosses row edges they hold the previous row's end or the next row's start."""
    for w in range(w_lo):
        for h in range(h_lo, h_hi):
            plane[h * width + w] = F(0.0)
    for w in range(w_hi, width):
        for h in range(h_lo, h_hi):
            plane[h * width + w] = F(0.0)


@kernel(FAST, rows=(0,), offset=2)
def im2col_copy_flat(cols, x, c0, height, width, ph, pw, dh, dw):
    """im2col_copy for unit strides and an output as wide as the input (Wo = W: a 3x3 kernel with
    padding 1): ``cols`` is (C, kh, kw, N, Ho*Wo) and ``x`` (N, C, H*W), each plane flat.

    Then every tap's plane is x's plane shifted by one offset, cols[c, i, j, n, q] =
    x[n, c0 + c, q + (i dh - ph) W + j dw - pw], so it is one long contiguous copy (a row of 28 is
    too short to vectorise well); the entries that wrapped across a row edge (columns w outside
    the tap's valid range) are then zeroed."""
    nc, kh, kw, nn, plane = cols.shape
    ho = plane // width
    for c in range(nc):
        for i in range(kh):
            for j in range(kw):
                h_lo, h_hi, w_lo, w_hi, q_lo, q_hi, shift = _flat_run(i, j, ho, height, width, ph, pw, dh, dw)
                for n in range(nn):
                    for q in range(q_lo):
                        cols[c, i, j, n, q] = F(0.0)
                    if q_hi > q_lo:
                        src = U(q_lo + shift)  # >= 0: the first valid pixel of the tap
                        for t in range(U(q_hi - q_lo)):
                            cols[c, i, j, n, U(q_lo) + t] = x[n, c0 + c, src + t]
                        _zero_wrapped(cols[c, i, j, n], width, h_lo, h_hi, w_lo, w_hi)
                    for q in range(max(q_lo, q_hi), plane):
                        cols[c, i, j, n, q] = F(0.0)


@kernel(FAST, rows=(0,), offset=2)
def im2col_copy_phases(cols, q, c0):
    """im2col_copy for stride 2 (no dilation) from the four phase planes of the padded input,
    q[n, c, a, b, u, v] = xpad[n, c, 2 u + a, 2 v + b] (:func:`_phases`): tap (i, j) of output (h, w) reads
    xpad[2 h + i, 2 w + j] = q[n, c, i % 2, j % 2, h + i // 2, w + j // 2], so every row is a contiguous read
    (the strided loop gathers every other float)."""
    nc, kh, kw, nn, ho, wo = cols.shape
    for c in range(nc):
        for i in range(kh):
            for j in range(kw):
                for n in range(nn):
                    for h in range(ho):
                        for w in range(U(wo)):
                            cols[c, i, j, n, h, w] = q[n, c0 + c, i % 2, j % 2, h + i // 2, w + U(j // 2)]


@kernel(FAST, rows=(0,), offset=2)
def col2im_sum_flat(cols, out, c0, height, width, ph, pw, dh, dw):
    """col2im_sum for the geometry of im2col_copy_flat: ``cols`` (C, kh, kw, N, Ho*Wo), ``out``
    (N, C, H*W). Each tap adds one long contiguous run into the plane; the run's entries that would
    wrap across a row edge are taps on the padding, so they are zeroed in ``cols`` first (``cols``
    is scratch: the GEMM's dL/dcols)."""
    nc, kh, kw, nn, plane = cols.shape
    ho = plane // width
    for c in range(nc):
        for n in range(nn):
            for p in range(height * width):
                out[n, c0 + c, p] = F(0.0)
            for i in range(kh):
                for j in range(kw):
                    h_lo, h_hi, w_lo, w_hi, q_lo, q_hi, shift = _flat_run(i, j, ho, height, width, ph, pw, dh, dw)
                    if q_hi <= q_lo:
                        continue
                    _zero_wrapped(cols[c, i, j, n], width, h_lo, h_hi, w_lo, w_hi)
                    dst = U(q_lo + shift)
                    for t in range(U(q_hi - q_lo)):
                        out[n, c0 + c, dst + t] += cols[c, i, j, n, U(q_lo) + t]


@kernel(FAST, rows=(0,), offset=2)
def col2im_sum(cols, out, c0, sh, sw, ph, pw, dh, dw):
    """out[n, c0 + c, y, x] = sum of cols[c, i, j, n, h, w] over the taps with h sh + i dh - ph = y and
    w sw + j dw - pw = x: the adjoint of im2col_copy (taps that fell on padding are dropped).

    ``out`` is the NCHW input gradient; the planes of the channels ``cols`` covers are overwritten. Each
    (n, c) plane is summed while it sits in L1; threads split the channels, so their writes never collide."""
    nc, kh, kw, nn, ho, wo = cols.shape
    height, width = out.shape[2], out.shape[3]
    for c in range(nc):
        for n in range(nn):
            for y in range(height):
                for x in range(width):
                    out[n, c0 + c, y, x] = F(0.0)
            for i in range(kh):
                h_lo, h_hi = _inside(i * dh - ph, sh, ho, height)
                for j in range(kw):
                    left = j * dw - pw
                    w_lo, w_hi = _inside(left, sw, wo, width)
                    for h in range(h_lo, h_hi):
                        r = h * sh + i * dh - ph
                        if sw == 1:  # unit stride spelled out: LLVM then sees a contiguous loop
                            for w in range(U(w_lo), U(w_hi)):
                                out[n, c0 + c, r, w + U(left)] += cols[c, i, j, n, h, w]
                        else:
                            for w in range(U(w_lo), U(w_hi)):
                                out[n, c0 + c, r, w * U(sw) + U(left)] += cols[c, i, j, n, h, w]


@kernel(FAST, rows=(0, 1))
def col2im_add(cols, out, sh, sw, dh, dw):
    """out[a, b, h sh + i dh, w sw + j dw] += cols[a, i, j, b, h, w]: the adjoint of im2col, for the
    (A, kh, kw, B, Ho, Wo) layout the conv GEMM writes. ``out`` (A, B, Hp, Wp) starts at zero.
    Threads split A (channels): each owns its output planes, so the adds never collide."""
    na, kh, kw, nb, ho, wo = cols.shape
    for a in range(na):
        for i in range(kh):
            for j in range(kw):
                for b in range(nb):
                    for h in range(ho):
                        r = h * sh + i * dh
                        if sw == 1:  # unit stride: the add vectorises
                            for w in range(U(wo)):
                                out[a, b, r, w + U(j * dw)] += cols[a, i, j, b, h, w]
                        else:
                            for w in range(U(wo)):
                                out[a, b, r, w * U(sw) + U(j * dw)] += cols[a, i, j, b, h, w]


@dispatch(_col2im)
def col2im(cols, padded_hw, stride, dilation):
    gemm_layout = cols.transpose(0, 2, 3, 1, 4, 5)  # (A, kh, kw, B, Ho, Wo): contiguous if a GEMM wrote it
    if not gemm_layout.flags.c_contiguous:
        return _col2im(cols, padded_hw, stride, dilation)
    out = np.zeros(cols.shape[:2] + tuple(padded_hw), np.float32)
    col2im_add(gemm_layout, out, *stride, *dilation)  # split over the threads by channel
    return out


# -- the per-thread pipeline of the kernel path ----------------------------------------------------------------
def _images_per_chunk(col_elements_per_image: int, images: int) -> int:
    """Images per chunk of a thread's ``images``: at most ``policy.conv_chunk_bytes`` of columns, so
    that they stay in the caches, in chunks of equal size (a short last chunk makes short GEMMs)."""
    most = max(1, threads.policy.conv_chunk_bytes // (4 * col_elements_per_image))
    chunks = -(-images // most)
    return -(-images // chunks)


def image_ranges(n: int) -> list:
    """How the kernel path shares a batch of ``n`` images among the threads: one range each.

    Each thread runs the whole pipeline (im2col, the GEMMs, col2im) on its own images with
    single-threaded BLAS calls, so there is no hand-off inside a product. A batch smaller than the
    thread count is one range: its products and copies are then split over the threads (``_Ops``)."""
    k = threads.policy.num_threads
    if k < 2 or n < k:
        return [(0, n)]
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


_PHASES = True  # (a module switch so that one process can time both im2col spellings)
_DENSE = True  # (the same for the dense method where the table picks it: off, those convs run im2col)


def openblas_here(a, b):
    """a @ b (a and b of one ndim, the same batch shape) by NumPy's OpenBLAS on the calling thread, called
    by address (``cblas.product``) and held to one thread meanwhile: the conv pipelines' product where
    ``conv_algorithms.products()`` says "openblas". ``np.matmul`` for what BLAS cannot read in place."""
    from neural_arch.backend import cblas  # noqa: PLC0415 - numba, compiled only when it is used

    out = np.empty(a.shape[:-1] + b.shape[-1:], np.float32)
    threads.blas_enter()
    try:
        if a.ndim == b.ndim and cblas.product(a, b, out, threads._numpy_openblas().gemm[out.dtype]):
            return out
        return np.matmul(a, b, out=out)
    finally:
        threads.blas_exit()


def _openblas_into(a, b, out):
    from neural_arch.backend import cblas  # noqa: PLC0415 - numba, compiled only when it is used

    if not cblas.product(a, b, out, threads._numpy_openblas().gemm[out.dtype]):
        np.matmul(a, b, out=out)


def openblas_split(a, b):
    """a @ b for 2-D a, b by NumPy's OpenBLAS, split over the threads as ``gemm.matmul`` splits it (blocks
    of the output, one one-thread call each): the dense method's products where OpenBLAS runs them."""
    jobs = gemm._blocks(a, b) if threads.policy.num_threads > 1 else None
    if jobs is None:
        return openblas_here(a, b)
    result, parts, partial_products = jobs
    threads.run_split(_openblas_into, parts)
    return result.sum(axis=0) if partial_products else result


class _Ops:
    """The kernels and the product one range's pipeline calls: serial kernels and one-thread BLAS when
    every thread has its own range, else the ones that split themselves over the threads (the product
    then splits itself only on MKL: OpenBLAS's, on one thread, runs as one call)."""

    def __init__(self, ranges):
        serial = len(ranges) > 1
        pick = (lambda kern: kern.serial) if serial else (lambda kern: kern)
        self.im2col, self.im2col_flat, self.im2col_phases = pick(im2col_copy), pick(im2col_copy_flat), pick(
            im2col_copy_phases)
        self.col2im, self.col2im_flat = pick(col2im_sum), pick(col2im_sum_flat)
        blas = products()
        if blas == "openblas" and (serial or threads.policy.num_threads < 2):
            self.matmul = openblas_here
        else:
            self.matmul = gemm.matmul_here if serial else gemm.matmul


class _Geometry:
    """One convolution's shapes and options, shared by the ranges of a call."""

    def __init__(self, xshape, wshape, stride, pads, dilation, groups, out_hw=None):
        self.xshape, self.wshape, self.stride, self.pads, self.dilation, self.groups = (
            xshape, wshape, stride, pads, dilation, groups)
        self.out_hw = tuple(out_hw or out_size(xshape, wshape, pads, stride, dilation))
        c, (kh, kw) = xshape[1], wshape[2:]
        self.plan = plan_for(c, wshape[0], (kh, kw), stride, self.out_hw, xshape[2:], xshape[0])
        if self.plan.method == "dense" and not (_DENSE and conv_dense.applies(xshape[2:], (kh, kw), groups)):
            self.plan = self.plan._replace(method="im2col")
        ranges = len(image_ranges(xshape[0]))
        if self.plan.method == "winograd" and not (winograd.applies((kh, kw), stride, dilation, groups, pads) and (
                ranges > 1 or threads.policy.num_threads < 2)):  # (its transforms do not split over threads)
            self.plan = self.plan._replace(method="im2col")
        per_thread = -(-xshape[0] // ranges)
        self.chunk = per_thread if self.plan.chunk == "whole" else _images_per_chunk(
            c * kh * kw * self.out_hw[0] * self.out_hw[1], per_thread)
        # unit strides and an output as wide as the input: each tap's plane is one run of the input plane
        self.flat = stride == (1, 1) and self.out_hw[1] == xshape[3]
        # stride 2 from phase planes where the columns are much larger than the input (the 7x7 stem): the
        # phase copy is two passes over the input, paid back by contiguous row reads
        self.phases = stride == (2, 2) and dilation == (1, 1) and kh * kw >= 25 and _PHASES

    def taps(self):
        """The dense method's tap of each (output pixel, input pixel) pair (``conv_dense.tap_table``)."""
        return conv_dense.tap_table(tuple(self.xshape[2:]), tuple(self.wshape[2:]), self.stride, tuple(self.pads),
                                    tuple(self.dilation), self.out_hw)


def _dense_matmul():
    return openblas_split if products() == "openblas" else gemm.matmul


@dispatch(_conv2d_forward)
def conv2d_forward(x, w, b, stride, pads, dilation, groups, kept=None):
    x = np.ascontiguousarray(x)
    geom = _Geometry(x.shape, w.shape, tuple(stride), pads, dilation, groups)
    n, o = x.shape[0], w.shape[0]
    if geom.plan.method == "dense":  # the whole batch in one product, split over the threads by gemm.matmul
        y = conv_dense.convolve(x, w, geom.taps(), geom.out_hw, kept, _dense_matmul())
        return y if b is None else np.add(y, b.reshape(1, o, 1, 1), out=y)
    y = np.empty((n, o) + geom.out_hw, np.float32)
    wm = w.reshape(groups, o // groups, -1)
    ranges = image_ranges(n)
    ops, bias = _Ops(ranges), None if b is None else b.reshape(1, o, 1, 1)
    if geom.plan.method == "winograd":
        geom.filter = winograd.transform_filter(w)
        if kept is not None:  # the backward's dL/dx turns it instead of transforming the turned filter again
            kept["winograd"] = geom.filter
    threads.run_split(_forward_images, [(ops, x[lo:hi], wm, bias, y[lo:hi], geom) for lo, hi in ranges])
    return y


@dispatch(_conv2d_backward)
def conv2d_backward(grad, x, w, stride, pads, dilation, groups, need_x, need_w, kept=None):
    geom = _Geometry(x.shape, w.shape, tuple(stride), pads, dilation, groups, grad.shape[2:])
    n, o = grad.shape[:2]
    if geom.plan.method == "dense":
        return conv_dense.gradients(grad, x, w, geom.taps(), need_x, need_w, kept, _dense_matmul())
    wm = w.reshape(groups, o // groups, -1)
    x = np.ascontiguousarray(x) if need_w else x
    ranges = image_ranges(n)
    gx = np.empty(x.shape, np.float32) if need_x else None
    # one partial dL/dW per range (each thread sums its own images), added up at the end
    gws = [np.zeros(wm.shape, np.float32) if need_w else None for _ in ranges]
    if need_x and geom.plan.method == "winograd":
        u = kept.get("winograd") if kept else None
        geom.filter = winograd.turned(u) if u is not None else winograd.transform_filter(
            np.ascontiguousarray(winograd.input_grad_filter(w)))
    threads.run_split(_backward_images, [
        (_Ops(ranges), x[lo:hi], grad[lo:hi], wm, None if gx is None else gx[lo:hi], part, geom)
        for (lo, hi), part in zip(ranges, gws)])
    return gx, (sum(gws[1:], gws[0]).reshape(w.shape) if need_w else None)


def _forward_images(ops, x, wm, bias, y, geom):
    """y = conv(x) (+ bias) for one range of images, a chunk at a time: im2col, one GEMM, and the
    transpose of its (O, n, Ho, Wo) result into NCHW."""
    n, o, ho, wo = y.shape
    for lo in range(0, n, geom.chunk):
        hi = min(n, lo + geom.chunk)
        if geom.plan.method == "winograd":
            winograd.convolve(x[lo:hi], geom.filter, (geom.pads[0], geom.pads[2]), (ho, wo), ops.matmul, y[lo:hi])
            if bias is not None:
                y[lo:hi] += bias
            continue
        cols = _columns(ops, x[lo:hi], geom)
        y[lo:hi] = ops.matmul(wm, cols).reshape(o, hi - lo, ho, wo).transpose(1, 0, 2, 3)
        if bias is not None:
            y[lo:hi] += bias


def _backward_images(ops, x, grad, wm, gx, gw, geom):
    """dL/dx (into ``gx``) and dL/dW (added into ``gw``) for one range of images, a chunk at a time."""
    n, o, ho, wo = grad.shape
    c, (kh, kw), pads, groups = geom.xshape[1], geom.wshape[2:], geom.pads, geom.groups
    for lo in range(0, n, geom.chunk):
        hi = min(n, lo + geom.chunk)
        g = np.ascontiguousarray(grad[lo:hi].transpose(1, 0, 2, 3)).reshape(groups, o // groups, (hi - lo) * ho * wo)
        if gw is not None:  # from this chunk's columns, copied again
            gw += long_k_product(g, _columns(ops, x[lo:hi], geom), ops.matmul, geom.plan.weight_grad == "transposed")
        if gx is not None and geom.plan.method == "winograd":  # dL/dy correlated with the turned filter
            winograd.convolve(grad[lo:hi], geom.filter, (kh - 1 - pads[0], kw - 1 - pads[2]), geom.xshape[2:],
                              ops.matmul, gx[lo:hi])
        elif gx is not None:  # the fused sum, straight into NCHW (taps on the padding dropped)
            gcols = ops.matmul(wm.transpose(0, 2, 1), g).reshape((c, kh, kw, hi - lo, ho * wo))
            if geom.flat:
                ops.col2im_flat(gcols, gx[lo:hi].reshape(hi - lo, c, -1), 0, *geom.xshape[2:], pads[0], pads[2],
                                *geom.dilation)
            else:
                ops.col2im(gcols.reshape(gcols.shape[:4] + (ho, wo)), gx[lo:hi], 0, *geom.stride, pads[0], pads[2],
                           *geom.dilation)


def _phases(x, pads):
    """q[n, c, a, b, u, v] = xpad[n, c, 2 u + a, 2 v + b]: the padded input (zeros past it, up to an even size)
    as four phase planes, for :func:`im2col_copy_phases`."""
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    xp = np.zeros((n, c, hp + hp % 2, wp + wp % 2), np.float32)
    xp[:, :, top : top + h, left : left + w] = x
    return np.ascontiguousarray(xp.reshape(n, c, xp.shape[2] // 2, 2, xp.shape[3] // 2, 2).transpose(0, 1, 3, 5, 2, 4))


def _columns(ops, x, geom):
    """im2col of a chunk of images by the kernel, as the GEMM operand (G, C/G*kh*kw, n*Ho*Wo)."""
    (n, c, height, width), (kh, kw), pads = x.shape, geom.wshape[2:], geom.pads
    cols = np.empty((c, kh, kw, n) + geom.out_hw, np.float32)
    if geom.flat:
        ops.im2col_flat(cols.reshape(c, kh, kw, n, -1), x.reshape(n, c, -1), 0, height, width, pads[0], pads[2],
                        *geom.dilation)
    elif geom.phases:
        ops.im2col_phases(cols, _phases(x, pads), 0)
    else:
        ops.im2col(cols, x, 0, *geom.stride, pads[0], pads[2], *geom.dilation)
    return cols.reshape(geom.groups, c // geom.groups * kh * kw, -1)
