"""Fractional max pooling (Graham, 2014): windows of a fixed size whose starts advance by a fractional
stride, pseudo-randomly placed per (sample, channel) plane.

Along an axis of n inputs pooled to m outputs by windows of k, with u ~ U[0, 1) drawn per plane and
axis (torch's ``_random_samples``, (N, C, 2 or 3): the last axis first, W then H (then T))::

    alpha = (n - k) / (m - 1)
    start_i = int((i + u) alpha) - int(u alpha)   for i < m - 1,     start_{m-1} = n - k

(computed in the input's dtype, as torch). Each output is the max of its window; the gradient goes to
the arg-max (``MaxPoolGather``), and ``return_indices`` gives torch's per-plane flat indices.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import get_generator
from neural_arch.errors import ConfigError, ShapeError
from neural_arch.ops.conv import _batched, ntuple
from neural_arch.ops.pool import MaxPoolGather
from neural_arch.ops.pool3d import _max_result

__all__ = ["fractional_max_pool2d", "fractional_max_pool2d_with_indices", "fractional_max_pool3d",
           "fractional_max_pool3d_with_indices"]


def _starts(u, n, m, k, dtype):
    """Window starts (planes, m) for the samples u (planes,) along one axis."""
    starts = np.empty((u.size, m), np.int64)
    if m > 1:
        alpha = dtype.type(n - k) / dtype.type(m - 1)
        i = np.arange(m - 1, dtype=dtype)
        u = u.astype(dtype)[:, None]
        starts[:, :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    starts[:, -1] = n - k
    return starts


def _fractional(op, input, nd, kernel_size, output_size, output_ratio, return_indices, samples, generator):
    x, unbatched = _batched(input, nd + 2, op, "(N, C, *spatial)")
    kernel = ntuple(kernel_size, nd, "kernel_size", op)
    spatial = tuple(x.shape[2:])
    if output_size is None:
        if output_ratio is None:
            raise ConfigError(f"{op}: give output_size or output_ratio")
        ratio = (output_ratio,) * nd if isinstance(output_ratio, (int, float)) else tuple(output_ratio)
        output_size = tuple(int(n * r) for n, r in zip(spatial, ratio))
    out = ntuple(output_size, nd, "output_size", op)
    # torch's bounds: o + k - 1 <= n in 2-d, < n in 3-d
    if any(o + k - 1 > n - (nd == 3) for o, k, n in zip(out, kernel, spatial)):
        raise ShapeError(f"{op}: output_size {out} + kernel_size {kernel} - 1 is too large for the input size "
                         f"{spatial}")
    N, C = x.shape[:2]
    dtype = x.data.dtype
    if samples is None:
        samples = get_generator(generator).random((N, C, nd)).astype(dtype)
    u = np.asarray(samples.data if isinstance(samples, Tensor) else samples).reshape(N * C, nd)
    # torch's sample order: the last spatial axis uses sample 0 (2-d: W, H; 3-d: T, H, W -- see below)
    order = list(range(nd - 1, -1, -1)) if nd == 2 else list(range(nd))
    starts = [_starts(u[:, order[a]], spatial[a], out[a], kernel[a], dtype) for a in range(nd)]
    # each output's window as flat indices: (planes, *out, *kernel)
    flat = np.zeros((N * C,) + out + kernel, np.int64)
    for a in range(nd):
        shape = [N * C] + [1] * (2 * nd)
        shape[1 + a] = out[a]
        pos = starts[a].reshape(shape) + np.arange(kernel[a]).reshape([1] * (1 + nd + a) + [kernel[a]] +
                                                                      [1] * (nd - a - 1))
        flat = flat * spatial[a] + pos
    windows = np.take_along_axis(x.data.reshape(N * C, -1), flat.reshape(N * C, -1), axis=1)
    windows = windows.reshape((N * C,) + out + (-1,))
    arg = windows.argmax(axis=-1)
    index = np.take_along_axis(flat.reshape((N * C,) + out + (-1,)), arg[..., None], axis=-1)[..., 0]
    index = index.reshape((N, C) + out)
    y = MaxPoolGather.apply(x, window=None, found=(index, None), overlapping=True)
    return _max_result(y, index, unbatched, return_indices)


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None, generator=None):
    """Fractional max pooling of ``(N, C, H, W)`` to ``output_size`` (or ``output_ratio`` of the input)."""
    return _fractional("fractional_max_pool2d", input, 2, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, generator)


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None, generator=None):
    """Fractional max pooling of ``(N, C, T, H, W)`` to ``output_size`` (or ``output_ratio`` of the input)."""
    return _fractional("fractional_max_pool3d", input, 3, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, generator)


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=True, _random_samples=None, generator=None):
    """``fractional_max_pool2d(..., return_indices=True)``."""
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True, _random_samples, generator)


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=True, _random_samples=None, generator=None):
    """``fractional_max_pool3d(..., return_indices=True)``."""
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True, _random_samples, generator)
