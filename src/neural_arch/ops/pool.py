"""Pooling: max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool2d, adaptive_max_pool2d.

Max pooling is split in two steps so that torch's ``return_indices`` falls out
for free and the differentiable part is one tiny Function:

1. the *first* maximum of every window (torch's tie rule), as a flat index
   ``h * W + w`` into its input plane (torch's ``indices``), no graph:
   ``backend.kernels.pool.max_pool2d_index`` (the kernel also keeps the maxima).
2. ``y = x.flat[index]`` (:class:`MaxPoolGather`), whose backward puts dL/dy
   back at the index (``max_pool_scatter``: adds where windows overlap).

Average pooling sums the window taps (one strided slice per tap, or a
reshape when windows tile the input) and divides by torch's divisor; its
backward spreads dL/dy / divisor back over each window (col2im).
Adaptive average pooling is separable: ``y = P_h x P_w^T`` with averaging
matrices, so forward and backward are matrix products.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.kernels.conv import col2im, pad_hw
from neural_arch.backend.kernels.pool import max_pool2d_index, max_pool_scatter, tiles
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops.conv import ntuple
from neural_arch.ops.shape import reshape

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
]


# -- the Functions --------------------------------------------------------------------------------------
class MaxPoolGather(Function):
    """y[n, c, p] = x[n, c].flat[index[n, c, p]]       dL/dx[n, c].flat[index] (+)= dL/dy

    ``index`` holds each window's argmax (torch's per-plane flat indices), found in forward from
    ``window`` = (kernel, stride, padding, dilation, out_hw), or given as ``found`` = (index, values)
    when the caller also needs it (``return_indices``). When windows overlap, one pixel can win
    several windows, so backward adds. ``values``: the maxima, when the kernel that found the index
    kept them (no gather then)."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, window, overlapping, found=None):
        index, values = found if found is not None else max_pool2d_index(x, *window)
        n, c = x.shape[:2]
        ctx.shape, ctx.overlapping, ctx.index = x.shape, overlapping, index
        if values is not None:
            return values
        plane = x.size // max(n * c, 1)
        gidx = index.reshape(n * c, -1) + (np.arange(n * c, dtype=np.int64) * plane)[:, None]
        return x.reshape(-1)[gidx.reshape(-1)].reshape(index.shape)

    @staticmethod
    def backward(ctx, grad):
        return max_pool_scatter(grad, ctx.index, ctx.shape, ctx.overlapping)


class AvgPool2d(Function):
    """y[n, c, h, w] = (1 / D[h, w]) sum_(i, j) xpad[n, c, h*sh + i, w*sw + j]

    dL/dx = crop(col2im(dL/dy / D broadcast over the kh*kw taps)), D = torch's divisor.
    """

    half = "float32"

    @staticmethod
    def forward(ctx, x, kernel, stride, pads, out_hw, divisor):
        (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
        n, c = x.shape[:2]
        if out_hw == (1, 1) and (kh, kw) == x.shape[2:] and not any(pads):  # a global average pool
            # the plane sums as one matrix-vector product (NumPy's .sum reduces short rows slowly)
            s = np.matmul(x.reshape(n * c, kh * kw), np.ones(kh * kw, x.dtype)).reshape(n, c, 1, 1)
        elif tiles(kernel, stride, pads, (1, 1), out_hw, x.shape[2:]):
            # one add per tap over strided views (.sum(axis=(3, 5)) on the 6-d view is far slower)
            taps = x[:, :, : ho * kh, : wo * kw].reshape(n, c, ho, kh, wo, kw)
            rows = taps[:, :, :, 0]
            for i in range(1, kh):
                rows = rows + taps[:, :, :, i]
            s = rows[..., 0]
            for j in range(1, kw):
                s = s + rows[..., j]
        else:
            xp = pad_hw(x, pads)
            s = np.zeros((n, c, ho, wo), dtype=x.dtype)
            for i in range(kh):
                for j in range(kw):
                    s += xp[:, :, i : i + (ho - 1) * sh + 1 : sh, j : j + (wo - 1) * sw + 1 : sw]
        ctx.geom = (x.shape, kernel, stride, pads, out_hw, divisor)
        return s / divisor if np.ndim(divisor) else s / x.dtype.type(divisor)

    @staticmethod
    def backward(ctx, grad):
        xshape, (kh, kw), stride, pads, (ho, wo), divisor = ctx.geom
        n, c, h, w = xshape
        gd = grad / divisor if np.ndim(divisor) else grad / grad.dtype.type(divisor)
        if (ho, wo) == (1, 1) and (kh, kw) == (h, w) and not any(pads):  # a global pool: one broadcast copy
            gx = np.empty(xshape, dtype=gd.dtype)
            gx[...] = gd
            return gx
        if tiles((kh, kw), stride, pads, (1, 1), (ho, wo), (h, w)):
            taps = np.empty((n, c, ho, kh, wo, kw), dtype=gd.dtype)
            for i in range(kh):  # one strided copy per tap (faster than one broadcast assignment)
                for j in range(kw):
                    taps[:, :, :, i, :, j] = gd
            if (ho * kh, wo * kw) == (h, w):
                return taps.reshape(xshape)
            gx = np.zeros(xshape, dtype=gd.dtype)  # the cropped rows and columns get no gradient
            gx[:, :, : ho * kh, : wo * kw] = taps.reshape(n, c, ho * kh, wo * kw)
            return gx
        cols = np.broadcast_to(gd[:, :, None, None], (n, c, kh, kw, ho, wo))
        padded = (h + pads[0] + pads[1], w + pads[2] + pads[3])
        return col2im(cols, padded, stride, (1, 1))[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


class AdaptiveAvgPool2d(Function):
    """y = P_h x P_w^T, P[o, i] = 1 / |window o| for i in window o     dL/dx = P_h^T dL/dy P_w"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, ph, pw):
        ctx.ph, ctx.pw = ph, pw
        return np.matmul(ph, np.matmul(x, pw.T))

    @staticmethod
    def backward(ctx, grad):
        return np.matmul(ctx.ph.T, np.matmul(grad, ctx.pw))


# -- helpers on raw arrays -----------------------------------------------------------------------------
def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: with ceil_mode the last window must start inside input or left padding."""
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _adaptive_windows(n: int, out: int):
    """torch's adaptive windows [floor(o*n/out), ceil((o+1)*n/out)) as an (out, kmax) index array.

    Shorter windows repeat their last index: a repeated pixel never changes a max, and it
    comes after the real one, so the first maximum is still the one torch picks.
    """
    o = np.arange(out)
    start = (o * n) // out
    end = ((o + 1) * n + out - 1) // out
    kmax = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(kmax), (end - 1)[:, None]), start, end


# -- argument handling ------------------------------------------------------------------------------------
def _as4d(input: Tensor, nd: int, op: str):
    """(N, C, H, W) view of a pooling input; nd = 2 for the 2-d pools, 1 for the 1-d ones.

    Returns the 4-d tensor and the shape to restore: unbatched inputs have one dim fewer,
    1-d pools add a unit height.
    """
    shape = input.data.shape
    if input.data.ndim not in (nd + 1, nd + 2):
        names = "(N, C, H, W) or (C, H, W)" if nd == 2 else "(N, C, L) or (C, L)"
        raise ShapeError(f"{op}: expected a {names} input, got shape {shape_str(shape)}")
    if not is_floating(input.data.dtype):
        raise DTypeError(f"{op}: expects a floating-point input, got {input.dtype}; convert with .float()")
    lead = shape[:-nd] if input.data.ndim == nd + 2 else (1,) + shape[:-nd]
    x4 = reshape(input, lead + (1,) * (2 - nd) + shape[-nd:])
    return x4, input.data.ndim == nd + 1


def _restore(y: Tensor, unbatched: bool, nd: int) -> Tensor:
    shape = y.data.shape
    if nd == 1:
        shape = shape[:2] + shape[3:]
    if unbatched:
        shape = shape[1:]
    return reshape(y, shape) if shape != y.data.shape else y


def _pool_args(op, x4, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalise (kernel, stride, padding, dilation) to pairs and compute the output size, with torch's checks."""
    def pair(v, name, minimum):
        t = ntuple(v, nd, name, op, minimum)
        return (1,) * (2 - nd) + t if name != "padding" else (0,) * (2 - nd) + t

    kernel = pair(kernel_size, "kernel_size", 1)
    no_stride = stride is None or (not isinstance(stride, int) and len(stride) == 0)
    stride = kernel if no_stride else pair(stride, "stride", 1)
    padding = pair(padding, "padding", 0)
    dilation = pair(dilation, "dilation", 1)
    for k, p in zip(kernel, padding):
        if p > k // 2:
            raise ConfigError(f"{op}: padding {padding[2 - nd:]} must be at most half the kernel size "
                              f"{kernel[2 - nd:]} (torch's rule: pad <= kernel_size // 2)")
    in_hw = x4.data.shape[2:]
    out_hw = tuple(_pool_out(n, k, s, p, d, bool(ceil_mode))
                   for n, k, s, p, d in zip(in_hw, kernel, stride, padding, dilation))
    if min(out_hw) < 1:
        raise ShapeError(f"{op}: the input's spatial size {in_hw[2 - nd:]} is too small for kernel "
                         f"{kernel[2 - nd:]} (dilation {dilation[2 - nd:]}, padding {padding[2 - nd:]}): "
                         f"the output would be {out_hw[2 - nd:]}")
    return kernel, stride, padding, dilation, out_hw


def _max_pool(op, input, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x4, unbatched = _as4d(input, nd, op)
    kernel, stride, padding, dilation, out_hw = _pool_args(op, x4, nd, kernel_size, stride, padding, dilation,
                                                           ceil_mode)
    window = (kernel, stride, padding, dilation, out_hw)
    overlapping = any(s < (k - 1) * d + 1 for k, s, d in zip(kernel, stride, dilation))
    if not return_indices:
        return _restore(MaxPoolGather.apply(x4, window=window, overlapping=overlapping), unbatched, nd)
    found = max_pool2d_index(x4.data, *window)
    y = _restore(MaxPoolGather.apply(x4, window=window, overlapping=overlapping, found=found), unbatched, nd)
    return y, Tensor._wrap(found[0].reshape(y.data.shape))


def _avg_pool(op, input, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x4, unbatched = _as4d(input, nd, op)
    kernel, stride, padding, _, out_hw = _pool_args(op, x4, nd, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if int(divisor_override) == 0:
            raise ConfigError(f"{op}: divisor_override must be non-zero, got {divisor_override}")
        divisor = float(divisor_override)
    else:
        sizes = []
        for n, k, s, p, o in zip(x4.data.shape[2:], kernel, stride, padding, out_hw):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, n + p)  # torch: windows past the padding (ceil_mode) count less
            if not count_include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, n)
            sizes.append(end - start)
        divisor = (sizes[0][:, None] * sizes[1][None, :]).astype(x4.data.dtype)
        if (divisor == kernel[0] * kernel[1]).all():
            divisor = float(kernel[0] * kernel[1])
    pads = []
    for n, k, s, p, o in zip(x4.data.shape[2:], kernel, stride, padding, out_hw):
        pads += [p, max(0, (o - 1) * s + k - n - p)]  # bottom/right: enough zeros for every window
    y = AvgPool2d.apply(x4, kernel=kernel, stride=stride, pads=tuple(pads), out_hw=out_hw, divisor=divisor)
    return _restore(y, unbatched, nd)


def _adaptive_size(output_size, in_hw, op):
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size, output_size)
    sizes = tuple(in_hw[i] if s is None else s for i, s in enumerate(output_size))
    if len(sizes) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
        raise ConfigError(f"{op}: output_size must be an int >= 1 or a pair of them (None keeps the input "
                          f"size), got {output_size!r}")
    if min(in_hw) < 1:
        raise ShapeError(f"{op}: input spatial size {tuple(in_hw)} is empty")
    return tuple(int(s) for s in sizes)


# -- the functional API ---------------------------------------------------------------------------------------
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over each window of ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``.

    ``return_indices=True`` also returns each maximum's flat index ``h * W + w`` in its input plane
    (int64), as torch does. Ties go to the first maximum in the window (row-major), like torch.
    NOTE: in a window holding several NaNs the output is NaN as in torch, but the index is
    the first NaN's (torch's CPU kernel reports the last).
    """
    return _max_pool("max_pool2d", input, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over each window of ``(N, C, L)``: max_pool2d on a unit-height image."""
    return _max_pool("max_pool1d", input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window of ``(N, C, H, W)``.

    Divisor, as torch: ``divisor_override`` if given; else the window size clipped to the padded
    input (``count_include_pad=True``) or the number of real input pixels in the window.
    """
    return _avg_pool("avg_pool2d", input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over each window of ``(N, C, L)``: avg_pool2d on a unit-height image."""
    return _avg_pool("avg_pool1d", input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size; window o spans [floor(o*H/Ho), ceil((o+1)*H/Ho))."""
    op = "adaptive_avg_pool2d"
    x4, unbatched = _as4d(input, 2, op)
    h, w = x4.data.shape[2:]
    ho, wo = _adaptive_size(output_size, (h, w), op)
    if ho and wo and h % ho == 0 and w % wo == 0:  # equal windows that tile: avg_pool2d's faster path
        return avg_pool2d(input, (h // ho, w // wo))
    mats = []
    for n, out in ((h, ho), (w, wo)):
        _, start, end = _adaptive_windows(n, out)
        cols = np.arange(n)
        inside = (cols >= start[:, None]) & (cols < end[:, None])
        mats.append((inside / (end - start)[:, None]).astype(x4.data.dtype))
    return _restore(AdaptiveAvgPool2d.apply(x4, ph=mats[0], pw=mats[1]), unbatched, 2)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to a fixed output size (torch's adaptive windows); optionally with flat indices."""
    op = "adaptive_max_pool2d"
    x4, unbatched = _as4d(input, 2, op)
    n, c, h, w = x4.data.shape
    ho, wo = _adaptive_size(output_size, (h, w), op)
    ih, *_ = _adaptive_windows(h, ho)
    iw, *_ = _adaptive_windows(w, wo)
    kh, kw = ih.shape[1], iw.shape[1]
    win = x4.data[:, :, ih[:, :, None, None], iw[None, None]]  # (N, C, Ho, kh, Wo, kw)
    arg = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, kh * kw).argmax(axis=-1)
    ki, kj = np.divmod(arg, kw)
    index = ih[np.arange(ho)[:, None], ki] * w + iw[np.arange(wo), kj]
    overlapping = h % ho != 0 or w % wo != 0
    y = _restore(MaxPoolGather.apply(x4, window=None, overlapping=overlapping, found=(index, None)), unbatched, 2)
    if return_indices:
        return y, Tensor._wrap(index.reshape(y.data.shape))
    return y
