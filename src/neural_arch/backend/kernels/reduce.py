"""Sums and means; the kernel takes those over the trailing dims of a large C-contiguous array
(rows split over the threads, each row accumulated in float64)."""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, kernel
from neural_arch.backend.threads import policy


def _sum_axes(x, axes, keepdim):
    """x summed over ``axes``"""
    return x.sum(axis=axes, keepdims=keepdim)


def _mean_axes(x, axes, keepdim):
    """the mean of x over ``axes``"""
    return x.mean(axis=axes, keepdims=keepdim)


@kernel(FAST, rows=(0, 1))
def row_sums(x, out):
    """out[r] = sum_j x[r, j], accumulated in float64"""
    rows, n = x.shape
    for r in range(rows):
        s = 0.0
        for j in range(n):
            s += x[r, j]
        out[r] = s


def _rows_of(x, axes) -> bool:
    """Are ``axes`` trailing dims, not all of them, of a C-contiguous x (the kernel's case: a sum over
    every dim would be one row, on one thread)?"""
    return bool(axes) and axes[0] != 0 and axes == tuple(range(axes[0], x.ndim)) and x.flags.c_contiguous


@dispatch(_sum_axes, min_elements=policy.reduce_kernel_min_elements)
def sum_axes(x, axes, keepdim):
    if not _rows_of(x, axes):
        return _sum_axes(x, axes, keepdim)
    lead = x.shape[: axes[0]]
    out = np.empty(lead, np.float32)
    row_sums(x.reshape(out.size, -1), out.reshape(-1))
    return out.reshape(lead + (1,) * len(axes)) if keepdim else out


@dispatch(_mean_axes, min_elements=policy.reduce_kernel_min_elements)
def mean_axes(x, axes, keepdim):
    if not _rows_of(x, axes):
        return _mean_axes(x, axes, keepdim)
    total = sum_axes.kernel(x, axes, keepdim)
    total /= np.float32(x.size // total.size)
    return total
