"""3-d pooling, unpooling and the ``*_with_indices`` names.

* max pools (``max_pool3d``, ``adaptive_max_pool3d``) find each window's argmax on the raw array and
  gather through ``MaxPoolGather`` (per-plane flat indices, torch's ``return_indices``), so the
  gradient goes to the winner as in the 2-d pools;
* ``avg_pool3d`` is a depthwise ``conv3d`` by a box of ones / its size (count_include_pad), divided by the
  count of real pixels instead when ``count_include_pad=False``;
* ``adaptive_avg_pool3d`` multiplies by one averaging matrix per axis (torch's adaptive windows);
* ``max_unpool{1,2,3}d`` scatter values to their indices (:class:`MaxUnpool`).
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.autocast import FP32
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, IndexingError, ShapeError, shape_str
from neural_arch.ops.conv import _batched, _unbatch, ntuple
from neural_arch.ops.conv3d import conv3d
from neural_arch.ops.elementwise import pow as _pow
from neural_arch.ops.linalg import einsum
from neural_arch.ops.pool import MaxPoolGather, _adaptive_windows, adaptive_max_pool2d, max_pool1d, max_pool2d
from neural_arch.ops.pool_extra import _lp_finish, adaptive_max_pool1d
from neural_arch.ops.shape import reshape

__all__ = [
    "adaptive_avg_pool3d", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d", "adaptive_max_pool3d_with_indices", "avg_pool3d", "lp_pool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d", "max_pool3d_with_indices",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
]


def _max_result(y: Tensor, index, unbatched: bool, return_indices: bool):
    """A max pool's output (and, with ``return_indices``, its per-plane flat indices), the batch dim removed again
    for an unbatched input."""
    if unbatched:
        y, index = _unbatch(y, True), index[0]
    return (y, Tensor._wrap(index)) if return_indices else y


def _out_size(n, k, s, p, d, ceil_mode):
    """torch's pooling output length (ceil_mode: a last window must start inside the input or left padding)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _window_argmax(x, kernel, stride, padding, dilation, ceil_mode):
    """Per-plane flat indices (N, C, *out) of each window's maximum of x (N, C, *spatial), -inf padding."""
    spatial = x.shape[2:]
    outs = [_out_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)]
    if min(outs) < 1:
        raise ShapeError(f"max pool: input {shape_str(x.shape)} is too small for kernel {kernel}")
    # the input coordinate of (output o, tap j) along each axis; out of range -> padding
    coords = [np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d
              for o, k, s, p, d in zip(outs, kernel, stride, padding, dilation)]
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, max(0, int(c.max()) + 1 - n)) for p, c, n in
                                          zip(padding, coords, spatial)], constant_values=-np.inf)
    k3 = len(spatial)
    grids = []  # axis i's padded coordinates, broadcast to (o1, k1, o2, k2, ...)
    for i, (c, p) in enumerate(zip(coords, padding)):
        shape = [1] * (2 * k3)
        shape[2 * i], shape[2 * i + 1] = c.shape
        grids.append((c + p).reshape(shape))
    win = padded[(slice(None), slice(None)) + tuple(grids)]  # (N, C, o1, k1, o2, k2, ...)
    order = [0, 1] + [2 + 2 * i for i in range(k3)] + [3 + 2 * i for i in range(k3)]
    win = win.transpose(order).reshape(x.shape[:2] + tuple(outs) + (-1,))
    arg = win.argmax(axis=-1)
    taps = np.unravel_index(arg, kernel)
    flat = np.zeros(arg.shape, np.int64)
    for axis in range(k3):
        o = np.arange(outs[axis]).reshape([-1 if i == axis else 1 for i in range(k3)])
        pos = o * stride[axis] - padding[axis] + taps[axis] * dilation[axis]
        flat = flat * spatial[axis] + pos
    return flat


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over each window of ``(N, C, D, H, W)``; ``stride`` defaults to ``kernel_size``."""
    op = "max_pool3d"
    x, unbatched = _batched(input, 5, op, "(N, C, D, H, W)")
    kernel = ntuple(kernel_size, 3, "kernel_size", op)
    stride = kernel if stride is None or stride == [] else ntuple(stride, 3, "stride", op)
    padding = ntuple(padding, 3, "padding", op, minimum=0)
    dilation = ntuple(dilation, 3, "dilation", op)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ConfigError(f"{op}: padding {padding} should be at most half of kernel_size {kernel}")
    index = _window_argmax(x.data, kernel, stride, padding, dilation, ceil_mode)
    overlapping = any(s < k for s, k in zip(stride, kernel)) or any(d > 1 for d in dilation)
    y = MaxPoolGather.apply(x, window=None, found=(index, None), overlapping=overlapping)
    return _max_result(y, index, unbatched, return_indices)


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices: bool = True):
    """``max_pool3d(..., return_indices=True)``."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices: bool = True):
    """``max_pool2d(..., return_indices=True)``."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices: bool = True):
    """``max_pool1d(..., return_indices=True)``."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """``adaptive_max_pool1d(..., return_indices=True)``."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """``adaptive_max_pool2d(..., return_indices=True)``."""
    return adaptive_max_pool2d(input, output_size, True)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over each window of ``(N, C, D, H, W)`` (``ceil_mode`` is not supported: a ConfigError)."""
    op = "avg_pool3d"
    if ceil_mode:
        raise ConfigError(f"{op}: ceil_mode=True is not implemented")
    x, unbatched = _batched(input, 5, op, "(N, C, D, H, W)")
    kernel = ntuple(kernel_size, 3, "kernel_size", op)
    stride = kernel if stride is None or stride == [] else ntuple(stride, 3, "stride", op)
    padding = ntuple(padding, 3, "padding", op, minimum=0)
    N, C = x.shape[:2]
    planes = reshape(x, (N * C, 1) + tuple(x.shape[2:]))
    box = Tensor(np.ones((1, 1) + kernel, x.data.dtype))
    sums = conv3d(planes, box, None, stride, padding)
    if divisor_override:
        y = sums / float(divisor_override)
    elif count_include_pad or not any(padding):
        y = sums / float(math.prod(kernel))
    else:
        counts = conv3d(Tensor(np.ones((1, 1) + tuple(x.shape[2:]), x.data.dtype)), box, None, stride, padding)
        y = sums / counts.detach()
    return _unbatch(reshape(y, (N, C) + tuple(y.shape[2:])), unbatched)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average pooling of ``(N, C, D, H, W)`` to ``output_size`` (an int or a triple; None keeps a size)."""
    op = "adaptive_avg_pool3d"
    x, unbatched = _batched(input, 5, op, "(N, C, D, H, W)")
    sizes = _sizes3(output_size, x.shape[2:], op)
    mats = []
    for n, out in zip(x.shape[2:], sizes):
        _, start, end = _adaptive_windows(n, out)
        cols = np.arange(n)
        inside = (cols >= start[:, None]) & (cols < end[:, None])
        mats.append(Tensor((inside / (end - start)[:, None]).astype(x.data.dtype)))
    return _unbatch(einsum("ncdhw,pd,qh,rw->ncpqr", x, *mats), unbatched)


def _sizes3(output_size, spatial, op):
    sizes = (output_size,) * 3 if isinstance(output_size, (int, np.integer)) or output_size is None else \
        tuple(output_size)
    if len(sizes) != 3:
        raise ConfigError(f"{op}: output_size must be an int or a triple, got {output_size!r}")
    sizes = tuple(int(n if s is None else s) for s, n in zip(sizes, spatial))
    if min(sizes) < 1:
        raise ConfigError(f"{op}: output_size must be >= 1, got {output_size!r}")
    return sizes


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling of ``(N, C, D, H, W)`` to ``output_size`` (torch's adaptive windows)."""
    op = "adaptive_max_pool3d"
    x, unbatched = _batched(input, 5, op, "(N, C, D, H, W)")
    spatial = tuple(x.shape[2:])
    sizes = _sizes3(output_size, spatial, op)
    idx = [_adaptive_windows(n, o)[0] for n, o in zip(spatial, sizes)]  # each (out, kmax)
    i_d = idx[0][:, :, None, None, None, None]
    i_h = idx[1][None, None, :, :, None, None]
    i_w = idx[2][None, None, None, None, :, :]
    win = x.data[:, :, i_d, i_h, i_w]  # (N, C, Do, kd, Ho, kh, Wo, kw)
    kd, kh, kw = (i.shape[1] for i in idx)
    win = win.transpose(0, 1, 2, 4, 6, 3, 5, 7).reshape(x.shape[:2] + sizes + (-1,))
    arg = win.argmax(axis=-1)
    td, th, tw = np.unravel_index(arg, (kd, kh, kw))
    od, oh, ow = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
    index = (idx[0][od, td] * spatial[1] + idx[1][oh, th]) * spatial[2] + idx[2][ow, tw]
    overlapping = any(n % o for n, o in zip(spatial, sizes))
    y = MaxPoolGather.apply(x, window=None, found=(index, None), overlapping=overlapping)
    return _max_result(y, index, unbatched, return_indices)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """``adaptive_max_pool3d(..., return_indices=True)``."""
    return adaptive_max_pool3d(input, output_size, True)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """``(sum over each window of x^p)^(1/p)`` over ``(N, C, D, H, W)``."""
    kernel = ntuple(kernel_size, 3, "kernel_size", "lp_pool3d")
    mean = avg_pool3d(_pow(input, norm_type), kernel, stride, 0, ceil_mode)
    return _lp_finish(mean, norm_type, math.prod(kernel))


class MaxUnpool(Function):
    """y[n, c].flat[index[n, c, p]] = x[n, c, p] (zeros elsewhere)

    dL/dx[n, c, p] = g[n, c].flat[index[n, c, p]]
    """

    autocast = FP32  # torch's CPU autocast list (max_unpool2d, max_unpool3d; torch's 1-d one runs the 2-d)

    @staticmethod
    def forward(ctx, x, index=None, out_spatial=None):
        N, C = x.shape[:2]
        plane = math.prod(out_spatial)
        ctx.index, ctx.plane = index, plane
        y = np.zeros((N * C, plane), x.dtype)
        np.put_along_axis(y, index.reshape(N * C, -1), x.reshape(N * C, -1), axis=1)
        return y.reshape((N, C) + tuple(out_spatial))

    @staticmethod
    def backward(ctx, grad):
        N, C = grad.shape[:2]
        g = np.take_along_axis(grad.reshape(N * C, ctx.plane), ctx.index.reshape(N * C, -1), axis=1)
        return g.reshape(ctx.index.shape)


def _max_unpool(op, nd, input, indices, kernel_size, stride, padding, output_size):
    x, unbatched = _batched(input, nd + 2, op, "(N, C, *spatial)")
    kernel = ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if stride is None else ntuple(stride, nd, "stride", op)
    padding = ntuple(padding, nd, "padding", op, minimum=0)
    if output_size is not None:
        out = tuple(int(s) for s in tuple(output_size)[-nd:])
    else:
        out = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(x.shape[2:], stride, padding, kernel))
    index = np.asarray(indices.data if isinstance(indices, Tensor) else indices).astype(np.int64)
    index = index.reshape(x.shape)
    if index.size and (index.min() < 0 or index.max() >= math.prod(out)):
        raise IndexingError(f"{op}: indices must lie in the output plane of {math.prod(out)} elements {out}, got "
                            f"[{index.min()}, {index.max()}]")
    return _unbatch(MaxUnpool.apply(x, index=index, out_spatial=out), unbatched)


def max_unpool1d(input: Tensor, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of max_pool1d: each value back at its index, zeros elsewhere."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of max_pool2d: each value back at its index, zeros elsewhere."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of max_pool3d: each value back at its index, zeros elsewhere."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)
