"""Convolution: conv1d, conv2d, conv_transpose2d, and unfold / fold (im2col / col2im).

Every convolution here is *im2col + one GEMM*:

    cols[(c, i, j), (n, h, w)] = xpad[n, c, h*sh + i*dh, w*sw + j*dw]      (im2col, a copy)
    y[o, (n, h, w)]            = sum_(c,i,j) W[o, (c, i, j)] cols[(c, i, j), (n, h, w)]

so that the hot loop is one BLAS matrix product over the whole batch. The
weight reshapes to ``(O, C*kh*kw)`` without a copy; the output comes out as
(O, N, Ho, Wo) and is transposed to NCHW (a copy the size of the output,
small next to the columns). One large GEMM beats N small ones: fewer BLAS
calls, better blocking, one thread team.

Backward:

    dL/dW    = dL/dy cols^T                            (one GEMM; the sum over n is inside it)
    dL/dcols = W^T dL/dy                               (one GEMM)
    dL/dx    = col2im(dL/dcols)                        (scatter-add: one slice add per kernel tap)

``col2im`` loops over the kh*kw kernel taps (9 for a 3x3 kernel), each adding
a whole strided slice, which is the adjoint of the im2col copy. In float32,
conv2d uses numba kernels for both copies (padding read as zeros, the gradient
written straight into NCHW); each thread takes its own images, a few at a time, so
that the columns stay in cache between the copy and the GEMMs (see ``Conv2d``).
With unit strides and an output as wide as the input (3x3, padding 1) each tap's
plane of columns is one contiguous run of the input plane, copied (and added back)
as one long loop: rows of 28 floats are too short for the vector units.
Groups split C and O into G blocks: the GEMMs gain a batch axis of size G.
conv_transpose2d is the adjoint of conv2d: its forward is conv2d's
input-gradient (GEMM then col2im) and its backward is conv2d's forward.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import gemm, threads
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops.fused import kernel_for
from neural_arch.ops.depthwise import DepthwiseConv2d, is_depthwise  # stream 7: the depthwise fast path

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "unfold", "fold"]


# -- im2col / col2im on raw arrays (shared with pool.py) ----------------------------------------------
def im2col(xp, kernel, stride, dilation, out_hw, batch_last=False):
    """Windows of a padded ``(N, C, Hp, Wp)`` array as a contiguous copy.

    ``cols[n, c, i, j, h, w] = xp[n, c, h*sh + i*dh, w*sw + j*dw]``, laid out as
    ``(N, C, kh, kw, Ho, Wo)``, or as ``(C, kh, kw, N, Ho, Wo)`` with ``batch_last`` (then
    ``(C*kh*kw, N*Ho*Wo)`` is a plain reshape: the whole batch is one GEMM operand).
    ``out_hw`` says how many windows to take along each axis (the buffer may be larger).
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, ::dh, ::dw]  # (N, C, Ho, Wo, kh, kw)
    return np.ascontiguousarray(win.transpose((1, 4, 5, 0, 2, 3) if batch_last else (0, 1, 4, 5, 2, 3)))


def col2im(cols, padded_hw, stride, dilation):
    """Adjoint of :func:`im2col`: add every column entry back to the pixel it was copied from.

    ``cols`` is ``(A, B, kh, kw, Ho, Wo)`` with any strides, (A, B) being (N, C) or (C, N);
    returns a zero-initialised ``(A, B, Hp, Wp)`` array of the sums. One strided slice add per
    kernel tap.
    """
    a, b, kh, kw, ho, wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = np.zeros((a, b) + tuple(padded_hw), dtype=cols.dtype)
    gemm_layout = cols.transpose(0, 2, 3, 1, 4, 5)  # (A, kh, kw, B, Ho, Wo): contiguous if a GEMM wrote it
    k = kernel_for(gemm_layout) if gemm_layout.flags.c_contiguous else None
    if k is not None:  # the fused loop, split over the threads by channel
        k.col2im_add(gemm_layout, out, sh, sw, dh, dw)
        return out
    for i in range(kh):
        rows = slice(i * dh, i * dh + (ho - 1) * sh + 1, sh)
        for j in range(kw):
            out[:, :, rows, j * dw : j * dw + (wo - 1) * sw + 1 : sw] += cols[:, :, i, j]
    return out


def _long_k_product(a, b, matmul=gemm.matmul):
    """a b^T for a (G, M, K), b (G, N, K) with K = N*Ho*Wo long: the weight gradient.

    Computed as (b a^T)^T: OpenBLAS runs that orientation much faster for a small (M, N) output
    and a long K (measured for 32 x 144 with K = 25,088: 0.92 ms against 1.55 ms). The transpose
    comes back as a copy of the small result."""
    return np.ascontiguousarray(matmul(b, a.transpose(0, 2, 1)).transpose(0, 2, 1))


def pad_hw(x, pads, value=0.0):
    """Pad the last two axes by ``(top, bottom, left, right)``; no copy when all are 0."""
    t, b, l, r = pads
    if not (t or b or l or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), mode="constant", constant_values=value)


def crop_hw(x, pads, hw):
    t, _, l, _ = pads
    return x[:, :, t : t + hw[0], l : l + hw[1]]


# -- the Functions --------------------------------------------------------------------------------------
# The kernel path of Conv2d works on a few images at a time, so that their im2col columns (and the
# gradient's) stay in cache between the copy and the GEMMs, and each thread takes its own images
# (see _image_ranges). Chunks of ~2 MB of columns per thread measured best (N32 16->32 28x28 k3).
_CHUNK_BYTES = 2 << 20


def _images_per_chunk(col_elements_per_image: int) -> int:
    return max(1, _CHUNK_BYTES // (4 * col_elements_per_image))


def _image_ranges(n: int) -> list:
    """How Conv2d's kernel path shares a batch of ``n`` images among the threads: one range each.

    Each thread runs the whole pipeline (im2col, the GEMMs, col2im) on its own images with
    single-threaded BLAS calls, so there is no hand-off inside a product and nothing to join until
    the end. Measured on N32 16->32 28x28 k3 fwd+bwd (one process, alternating): 3.3 ms, against 4.3 ms
    with the whole batch in chunks and every product split over the threads. A batch smaller than the
    thread count is one range: its products and copies are then split over the threads (``_Ops``)."""
    k = threads.num_threads()
    if k < 2 or n < k:
        return [(0, n)]
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


class _Ops:
    """The kernels and the product one range's pipeline calls: serial kernels and one-thread BLAS when
    every thread has its own range, else the ones that split themselves over the threads."""

    def __init__(self, k, ranges):
        serial = len(ranges) > 1
        pick = (lambda kern: kern.serial) if serial else (lambda kern: kern)
        self.im2col, self.im2col_flat = pick(k.im2col_copy), pick(k.im2col_copy_flat)
        self.col2im, self.col2im_flat = pick(k.col2im_sum), pick(k.col2im_sum_flat)
        self.matmul = np.matmul if serial else gemm.matmul


def _flat(geom, out_hw) -> bool:
    """Unit strides and an output as wide as the input (a 3x3 kernel with padding 1): each tap's plane
    of columns is then one contiguous run of the input plane (``im2col_copy_flat``)."""
    xshape, stride = geom[0], geom[3]
    return stride == (1, 1) and out_hw[1] == xshape[3]


class Conv2d(Function):
    """y[n, o] = b[o] + sum_(c in group(o), i, j) W[o, c, i, j] xpad[n, c, h*sh + i*dh, w*sw + j*dw]

    Backward (cols = im2col(xpad) as (G, C/G*kh*kw, N*Ho*Wo), g = dL/dy as (G, O/G, N*Ho*Wo)):
        dL/dW = g cols^T      dL/dx = crop(col2im(W^T g))      dL/db = sum_(n,h,w) dL/dy

    NOTE: the batch sits in the GEMMs' long axis, (C*kh*kw, N*Ho*Wo), so each product is one
    large BLAS call (per group) instead of N small ones; the price is a transpose of the
    output and of dL/dy between NCHW and CNHW, which is cheap next to the columns.
    With the kernels (float32) each thread takes a range of images (``_image_ranges``) and goes
    through it in chunks (``_CHUNK_BYTES`` of columns), and dL/dW copies the columns again instead of
    keeping the forward's: a copy from cache costs less than reading 4-byte columns of the whole
    batch back from memory.
    ``pads`` is (top, bottom, left, right): padding="same" can be asymmetric.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        hp, wp = x.shape[2] + pads[0] + pads[1], x.shape[3] + pads[2] + pads[3]
        ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        wm = w.reshape(groups, o // groups, cg * kh * kw)
        ctx.geom = (x.shape, w.shape, (hp, wp), stride, pads, dilation, groups)
        need = ctx.needs_input_grad
        k = kernel_for(x, w)
        if k is None:  # NumPy: one im2col copy of the whole batch, kept for dL/dW
            cols = im2col(pad_hw(x, pads), (kh, kw), stride, dilation, (ho, wo), batch_last=True)
            cols = cols.reshape(groups, cg * kh * kw, n * ho * wo)
            y = np.ascontiguousarray(gemm.matmul(wm, cols).reshape(o, n, ho, wo).transpose(1, 0, 2, 3))
            if b is not None:
                y += b.reshape(1, o, 1, 1)
            ctx.save_for_backward(cols if need[1] else None, wm if need[0] else None)
            ctx.kernels = None
            return y
        x = np.ascontiguousarray(x)
        ctx.kernels, ctx.chunk = k, _images_per_chunk(c * kh * kw * ho * wo)
        y = np.empty((n, o, ho, wo), np.float32)
        ranges = _image_ranges(n)
        ops, bias = _Ops(k, ranges), None if b is None else b.reshape(1, o, 1, 1)
        threads.run_split(_forward_images, [(ops, x[lo:hi], wm, bias, y[lo:hi], ctx) for lo, hi in ranges])
        ctx.save_for_backward(x if need[1] else None, wm if need[0] else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        saved, wm = ctx.saved_tensors  # saved: the columns (NumPy path) or x (kernel path), for dL/dW
        xshape, wshape, padded_hw, stride, pads, dilation, groups = ctx.geom
        n, o, ho, wo = grad.shape
        gx = gw = gb = None
        if ctx.kernels is None:
            g = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(groups, o // groups, n * ho * wo)
            if wm is not None:
                gcols = gemm.matmul(wm.transpose(0, 2, 1), g).reshape((xshape[1],) + wshape[2:] + (n, ho, wo))
                gxp = col2im(gcols.transpose(0, 3, 1, 2, 4, 5), padded_hw, stride, dilation)  # (C, N, Hp, Wp)
                gx = np.ascontiguousarray(crop_hw(gxp, pads, xshape[2:]).transpose(1, 0, 2, 3))
            if saved is not None:
                gw = _long_k_product(g, saved).reshape(wshape)
        else:
            ranges = _image_ranges(n)
            ops = _Ops(ctx.kernels, ranges)
            gx = np.empty(xshape, np.float32) if wm is not None else None
            k_total = int(np.prod(wshape[1:]))
            # one partial dL/dW per range (each thread sums its own images), added up at the end
            gws = [np.zeros((groups, o // groups, k_total), np.float32) if saved is not None else None
                   for _ in ranges]
            grad = np.asarray(grad, dtype=np.float32)
            threads.run_split(_backward_images, [
                (ops, None if saved is None else saved[lo:hi], grad[lo:hi], wm,
                 None if gx is None else gx[lo:hi], part, ctx) for (lo, hi), part in zip(ranges, gws)])
            if saved is not None:
                gw = sum(gws[1:], gws[0]).reshape(wshape)
        if len(ctx.needs_input_grad) == 3 and ctx.needs_input_grad[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return (gx, gw) if len(ctx.needs_input_grad) == 2 else (gx, gw, gb)


def _forward_images(ops, x, wm, bias, y, ctx):
    """y = conv(x) (+ bias) for one range of images, a chunk at a time: im2col, one GEMM, and the
    transpose of its (O, n, Ho, Wo) result into NCHW."""
    n, o, ho, wo = y.shape
    for lo in range(0, n, ctx.chunk):
        hi = min(n, lo + ctx.chunk)
        cols = _columns(ops, x[lo:hi], ctx.geom, (ho, wo))
        y[lo:hi] = ops.matmul(wm, cols).reshape(o, hi - lo, ho, wo).transpose(1, 0, 2, 3)
        if bias is not None:
            y[lo:hi] += bias


def _backward_images(ops, x, grad, wm, gx, gw, ctx):
    """dL/dx (into ``gx``) and dL/dW (added into ``gw``) for one range of images, a chunk at a time."""
    xshape, wshape, _, stride, pads, dilation, groups = ctx.geom
    n, o, ho, wo = grad.shape
    for lo in range(0, n, ctx.chunk):
        hi = min(n, lo + ctx.chunk)
        g = np.ascontiguousarray(grad[lo:hi].transpose(1, 0, 2, 3)).reshape(groups, o // groups, (hi - lo) * ho * wo)
        if gw is not None:  # from this chunk's columns, copied again
            gw += _long_k_product(g, _columns(ops, x[lo:hi], ctx.geom, (ho, wo)), ops.matmul)
        if gx is not None:  # the fused sum, straight into NCHW (taps on the padding dropped)
            gcols = ops.matmul(wm.transpose(0, 2, 1), g).reshape((xshape[1],) + wshape[2:] + (hi - lo, ho * wo))
            if _flat(ctx.geom, (ho, wo)):
                ops.col2im_flat(gcols, gx[lo:hi].reshape(hi - lo, xshape[1], -1), 0, *xshape[2:], pads[0], pads[2],
                                *dilation)
            else:
                ops.col2im(gcols.reshape(gcols.shape[:4] + (ho, wo)), gx[lo:hi], 0, *stride, pads[0], pads[2],
                           *dilation)


def _columns(ops, x, geom, out_hw):
    """im2col of a chunk of images by the kernel, as the GEMM operand (G, C/G*kh*kw, n*Ho*Wo)."""
    _, wshape, _, stride, pads, dilation, groups = geom
    (n, c, height, width), (kh, kw) = x.shape, wshape[2:]
    cols = np.empty((c, kh, kw, n) + tuple(out_hw), np.float32)
    if _flat(geom, out_hw):
        ops.im2col_flat(cols.reshape(c, kh, kw, n, -1), x.reshape(n, c, -1), 0, height, width, pads[0], pads[2],
                        *dilation)
    else:
        ops.im2col(cols, x, 0, *stride, pads[0], pads[2], *dilation)
    return cols.reshape(groups, c // groups * kh * kw, -1)


class ConvTranspose2d(Function):
    """The adjoint of conv2d in x: y = crop_p(col2im(W^T x)) (+ b), W of shape (C_in, C_out/G, kh, kw).

    Backward (gcols = im2col(zero-extended dL/dy), the windows of conv2d's forward):
        dL/dx = W gcols        dL/dW = x gcols^T        dL/db = sum_(n,h,w) dL/dy
    Same CNHW layout as Conv2d: the batch is in the GEMMs' long axis.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1),
                groups=1, out_hw=None, full_hw=None):
        n, cin, h, wd = x.shape
        _, og, kh, kw = w.shape
        wm = w.reshape(groups, cin // groups, og * kh * kw)
        xm = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(groups, cin // groups, n * h * wd)
        cols = gemm.matmul(wm.transpose(0, 2, 1), xm).reshape(groups * og, kh, kw, n, h, wd)
        full = col2im(cols.transpose(0, 3, 1, 2, 4, 5), full_hw, stride, dilation)  # (C_out, N, Hf, Wf)
        y = full[:, :, padding[0] : padding[0] + out_hw[0], padding[1] : padding[1] + out_hw[1]]
        if b is not None:
            y += b.reshape(-1, 1, 1, 1)
        need = ctx.needs_input_grad
        ctx.save_for_backward(xm if need[1] else None, wm if need[0] else None)
        ctx.geom = (x.shape, w.shape, stride, padding, dilation, groups, full_hw)
        return np.ascontiguousarray(y.transpose(1, 0, 2, 3))

    @staticmethod
    def backward(ctx, grad):
        xm, wm = ctx.saved_tensors
        xshape, wshape, stride, padding, dilation, groups, full_hw = ctx.geom
        n, cout, ho, wo = grad.shape
        if tuple(full_hw) == (ho, wo):
            gfull = grad
        else:
            gfull = np.zeros((n, cout) + tuple(full_hw), dtype=grad.dtype)
            gfull[:, :, padding[0] : padding[0] + ho, padding[1] : padding[1] + wo] = grad
        gcols = im2col(gfull, wshape[2:], stride, dilation, xshape[2:], batch_last=True)
        gcols = gcols.reshape(groups, (cout // groups) * wshape[2] * wshape[3], n * xshape[2] * xshape[3])
        gx = gw = gb = None
        if wm is not None:
            gx = gemm.matmul(wm, gcols).reshape((xshape[1], n) + xshape[2:])
            gx = np.ascontiguousarray(gx.transpose(1, 0, 2, 3))
        if xm is not None:
            gw = _long_k_product(xm, gcols).reshape(wshape)
        if len(ctx.needs_input_grad) == 3 and ctx.needs_input_grad[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return (gx, gw) if len(ctx.needs_input_grad) == 2 else (gx, gw, gb)


class Unfold(Function):
    """y[n, (c, i, j), (h, w)] = xpad[n, c, h*sh + i*dh, w*sw + j*dw]     dL/dx = crop(col2im(dL/dy))"""

    @staticmethod
    def forward(ctx, x, kernel, stride, pads, dilation):
        n, c = x.shape[:2]
        xp = pad_hw(x, pads)
        hp, wp = xp.shape[2:]
        ho = (hp - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        wo = (wp - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
        ctx.geom = (x.shape, (hp, wp), (ho, wo), kernel, stride, pads, dilation)
        return im2col(xp, kernel, stride, dilation, (ho, wo)).reshape(n, c * kernel[0] * kernel[1], ho * wo)

    @staticmethod
    def backward(ctx, grad):
        xshape, padded_hw, out_hw, kernel, stride, pads, dilation = ctx.geom
        cols = grad.reshape(xshape[:2] + tuple(kernel) + tuple(out_hw))
        return crop_hw(col2im(cols, padded_hw, stride, dilation), pads, xshape[2:])


class Fold(Function):
    """y = crop(col2im(x)): the sum of overlapping blocks     dL/dx = im2col(pad(dL/dy)) (unfold)"""

    @staticmethod
    def forward(ctx, x, out_size, kernel, stride, pads, dilation, blocks):
        n, ckk, _ = x.shape
        c = ckk // (kernel[0] * kernel[1])
        padded = (out_size[0] + pads[0] + pads[1], out_size[1] + pads[2] + pads[3])
        ctx.geom = (x.shape, kernel, stride, pads, dilation, blocks)
        full = col2im(x.reshape((n, c) + tuple(kernel) + tuple(blocks)), padded, stride, dilation)
        return crop_hw(full, pads, out_size)

    @staticmethod
    def backward(ctx, grad):
        xshape, kernel, stride, pads, dilation, blocks = ctx.geom
        return im2col(pad_hw(grad, pads), kernel, stride, dilation, blocks).reshape(xshape)


# -- argument handling -----------------------------------------------------------------------------------
def ntuple(value, n: int, name: str, op: str, minimum: int = 1) -> tuple:
    """An int or a sequence of n ints -> a tuple of n ints, each >= minimum."""
    if isinstance(value, Tensor):
        value = value.tolist()
    vals = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(vals) == 1 and n > 1:
        vals = vals * n
    if len(vals) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        raise ConfigError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in vals):
        raise ConfigError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


def check_float_inputs(op: str, *tensors) -> None:
    dtype = tensors[0].data.dtype
    for t in tensors:
        if t is None:
            continue
        if t.data.dtype.kind != "f":
            raise DTypeError(f"{op}: expects floating-point tensors, got {t.dtype}; convert with .float()")
        if t.data.dtype != dtype:
            names = ", ".join(str(u.dtype) for u in tensors if u is not None)
            raise DTypeError(f"{op}: input, weight and bias must share one dtype, got ({names}); "
                             "cast them with .to(dtype)")


def _conv_padding(padding, kernel, dilation, stride, op: str) -> tuple:
    """torch's padding argument -> (top, bottom, left, right) for the spatial dims (H, W)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ConfigError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ConfigError(f"{op}: padding='same' is not supported for strided convolutions "
                              f"(stride={stride}); use stride=1 or an explicit padding")
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]  # torch puts the odd extra pixel at the end
        return tuple(pads)
    ph, pw = ntuple(padding, 2, "padding", op, minimum=0)
    return (ph, ph, pw, pw)


def _batched(x: Tensor, rank: int, op: str, what: str) -> tuple[Tensor, bool]:
    """Accept torch's unbatched inputs (one dim fewer): add the batch dim and say so."""
    from neural_arch.ops.shape import reshape  # noqa: PLC0415

    nd = x.data.ndim
    if nd == rank - 1:
        return reshape(x, (1,) + x.data.shape), True
    if nd != rank:
        raise ShapeError(f"{op}: expected a {rank - 1}-d (unbatched) or {rank}-d (batched) input {what}, "
                         f"got shape {shape_str(x.shape)}")
    return x, False


def _unbatch(y: Tensor, unbatched: bool) -> Tensor:
    from neural_arch.ops.shape import reshape  # noqa: PLC0415

    return reshape(y, y.data.shape[1:]) if unbatched else y


def _check_conv_shapes(op, x, weight, bias, groups, transposed=False):
    c = x.data.shape[1]
    ws = weight.data.shape
    if groups < 1:
        raise ConfigError(f"{op}: groups must be >= 1, got {groups}")
    if c % groups:
        raise ShapeError(f"{op}: input channels ({c}) must be divisible by groups ({groups})")
    if transposed:
        if ws[0] != c:
            raise ShapeError(f"{op}: weight {shape_str(ws)} expects {ws[0]} input channels "
                             f"(weight.shape[0]), but the input {shape_str(x.shape)} has {c}")
        out_channels = ws[1] * groups
    else:
        if ws[0] % groups:
            raise ShapeError(f"{op}: out_channels (weight.shape[0] = {ws[0]}) must be divisible by groups ({groups})")
        if ws[1] * groups != c:
            raise ShapeError(f"{op}: weight {shape_str(ws)} with groups={groups} expects {ws[1] * groups} input "
                             f"channels, but the input {shape_str(x.shape)} has {c}")
        out_channels = ws[0]
    if bias is not None and bias.data.shape != (out_channels,):
        raise ShapeError(f"{op}: bias must have shape ({out_channels},), got {shape_str(bias.shape)}")


# -- the functional API ------------------------------------------------------------------------------------
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in torch) of ``(N, C, H, W)`` by ``(O, C/groups, kh, kw)``.

    ``padding``: int, (ph, pw), ``"valid"`` (none) or ``"same"`` (output size = input size; stride 1
    only; an odd total padding puts the extra pixel at the bottom/right, like torch).
    A 3-d ``(C, H, W)`` input is treated as a batch of one and returned without the batch dim.
    """
    op = "conv2d"
    x, unbatched = _batched(input, 4, op, "(N, C, H, W)")
    if weight.data.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-d (out_channels, in_channels/groups, kh, kw), "
                         f"got {shape_str(weight.shape)}")
    check_float_inputs(op, x, weight, bias)
    stride = ntuple(stride, 2, "stride", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    groups = int(groups)
    _check_conv_shapes(op, x, weight, bias, groups)
    kernel = weight.data.shape[2:]
    pads = _conv_padding(padding, kernel, dilation, stride, op)
    hp, wp = x.data.shape[2] + pads[0] + pads[1], x.data.shape[3] + pads[2] + pads[3]
    eff = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    if eff[0] > hp or eff[1] > wp:
        raise ShapeError(f"{op}: kernel {kernel} (dilated to {eff}) is larger than the padded input "
                         f"({hp}, {wp}) of input {shape_str(input.shape)}; pad more or use a smaller kernel")
    args = (x, weight) if bias is None else (x, weight, bias)
    if is_depthwise(x.data.shape, weight.data.shape, groups):  # stream 7: depthwise has its own kernel
        return _unbatch(DepthwiseConv2d.apply(*args, stride=stride, pads=pads, dilation=dilation), unbatched)
    y = Conv2d.apply(*args, stride=stride, pads=pads, dilation=dilation, groups=groups)
    return _unbatch(y, unbatched)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution of ``(N, C, L)`` by ``(O, C/groups, k)``: conv2d on a unit-height image."""
    from neural_arch.ops.shape import reshape  # noqa: PLC0415

    op = "conv1d"
    x, unbatched = _batched(input, 3, op, "(N, C, L)")
    if weight.data.ndim != 3:
        raise ShapeError(f"{op}: weight must be 3-d (out_channels, in_channels/groups, k), got {shape_str(weight.shape)}")
    s = ntuple(stride, 1, "stride", op)[0]
    d = ntuple(dilation, 1, "dilation", op)[0]
    p = padding if isinstance(padding, str) else ntuple(padding, 1, "padding", op, minimum=0)[0]
    x4 = reshape(x, x.data.shape[:2] + (1, x.data.shape[2]))
    w4 = reshape(weight, weight.data.shape[:2] + (1, weight.data.shape[2]))
    y = conv2d(x4, w4, bias, stride=(1, s), padding=p if isinstance(p, str) else (0, p), dilation=(1, d),
               groups=groups)
    y = reshape(y, y.data.shape[:2] + (y.data.shape[3],))
    return _unbatch(y, unbatched)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input), weight ``(C_in, C_out/groups, kh, kw)``.

    Output size per axis: ``(H - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``.
    """
    op = "conv_transpose2d"
    x, unbatched = _batched(input, 4, op, "(N, C, H, W)")
    if weight.data.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-d (in_channels, out_channels/groups, kh, kw), "
                         f"got {shape_str(weight.shape)}")
    check_float_inputs(op, x, weight, bias)
    stride = ntuple(stride, 2, "stride", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    padding = ntuple(padding, 2, "padding", op, minimum=0)
    output_padding = ntuple(output_padding, 2, "output_padding", op, minimum=0)
    groups = int(groups)
    _check_conv_shapes(op, x, weight, bias, groups, transposed=True)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ConfigError(f"{op}: output_padding {output_padding} must be smaller than stride {stride} "
                              f"or dilation {dilation}")
    kernel = weight.data.shape[2:]
    out_hw, full_hw = [], []
    for n_in, k, s, p, d, o in zip(x.data.shape[2:], kernel, stride, padding, dilation, output_padding):
        size = (n_in - 1) * s - 2 * p + d * (k - 1) + o + 1
        if size < 1:
            raise ShapeError(f"{op}: input {shape_str(input.shape)} with kernel {kernel}, stride {stride}, "
                             f"padding {padding} gives an empty output; use less padding")
        out_hw.append(size)
        full_hw.append(max((n_in - 1) * s + d * (k - 1) + 1, p + size))  # col2im buffer before cropping
    args = (x, weight) if bias is None else (x, weight, bias)
    y = ConvTranspose2d.apply(*args, stride=stride, padding=padding, output_padding=output_padding,
                              dilation=dilation, groups=groups, out_hw=tuple(out_hw), full_hw=tuple(full_hw))
    return _unbatch(y, unbatched)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col, torch's ``F.unfold``: ``(N, C, H, W)`` -> ``(N, C*kh*kw, L)``, L = number of windows."""
    op = "unfold"
    x, unbatched = _batched(input, 4, op, "(N, C, H, W)")
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    stride = ntuple(stride, 2, "stride", op)
    ph, pw = ntuple(padding, 2, "padding", op, minimum=0)
    h, w = x.data.shape[2] + 2 * ph, x.data.shape[3] + 2 * pw
    if (kernel[0] - 1) * dilation[0] + 1 > h or (kernel[1] - 1) * dilation[1] + 1 > w:
        raise ShapeError(f"{op}: kernel {kernel} with dilation {dilation} does not fit in the padded input "
                         f"({h}, {w}) of {shape_str(input.shape)}")
    y = Unfold.apply(x, kernel=kernel, stride=stride, pads=(ph, ph, pw, pw), dilation=dilation)
    return _unbatch(y, unbatched)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, torch's ``F.fold``: ``(N, C*kh*kw, L)`` -> ``(N, C, H, W)``, summing overlapping blocks."""
    op = "fold"
    x, unbatched = _batched(input, 3, op, "(N, C*kh*kw, L)")
    out_size = ntuple(output_size, 2, "output_size", op)
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    stride = ntuple(stride, 2, "stride", op)
    ph, pw = ntuple(padding, 2, "padding", op, minimum=0)
    blocks = tuple((o + 2 * p - d * (k - 1) - 1) // s + 1
                   for o, p, d, k, s in zip(out_size, (ph, pw), dilation, kernel, stride))
    _, ckk, length = x.data.shape
    kk = kernel[0] * kernel[1]
    if ckk % kk:
        raise ShapeError(f"{op}: input dim 1 ({ckk}) must be divisible by kh*kw = {kk} for kernel {kernel}")
    if min(blocks) < 1 or blocks[0] * blocks[1] != length:
        raise ShapeError(f"{op}: output_size {out_size} with kernel {kernel}, dilation {dilation}, padding "
                         f"{(ph, pw)}, stride {stride} has {blocks[0]}x{blocks[1]} blocks, but the input "
                         f"{shape_str(input.shape)} has L = {length}")
    y = Fold.apply(x, out_size=out_size, kernel=kernel, stride=stride, pads=(ph, ph, pw, pw), dilation=dilation,
                   blocks=blocks)
    return _unbatch(y, unbatched)
