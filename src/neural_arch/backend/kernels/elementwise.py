"""Elementwise arithmetic on large arrays: NumPy's ufuncs, split over the threads.

``add(a, b)`` is ``a + b``; from ``threads.policy.ufunc_split_elements`` elements the call is cut
into row blocks computed at once on our threads (``backend.ufuncs.call``: NumPy releases the GIL
inside a ufunc's loop). The size test is written in each function rather than left to
``ufuncs.call``, which costs a Python call on every tiny op. ``multiply`` and ``scale`` also have
a numba kernel: one pass, split over the threads from ``policy.kernel_min_elements``.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import ufuncs
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, kernel
from neural_arch.backend.threads import policy


def add(a, b):
    """a + b"""
    return ufuncs.call(np.add, a, b) if a.size >= policy.ufunc_split_elements else a + b


def subtract(a, b):
    """a - b"""
    return ufuncs.call(np.subtract, a, b) if a.size >= policy.ufunc_split_elements else a - b


def divide(a, b):
    """a / b"""
    return ufuncs.call(np.true_divide, a, b) if a.size >= policy.ufunc_split_elements else a / b


def negative(a):
    """-a"""
    return ufuncs.call(np.negative, a) if a.size >= policy.ufunc_split_elements else -a


def exp(a):
    """e^a"""
    return ufuncs.call(np.exp, a) if a.size >= policy.ufunc_split_elements else np.exp(a)


def _multiply(a, b):
    """a * b"""
    return ufuncs.call(np.multiply, a, b) if a.size >= policy.ufunc_split_elements else a * b


@kernel(FAST, rows=(0, 1, 2))
def multiply_kernel(a, b, out):
    """out = a b, elementwise (flat, contiguous float32)"""
    for i in range(a.size):
        out[i] = a[i] * b[i]


@dispatch(_multiply, min_elements=policy.small_kernel_min_elements)
def multiply_large(a, b):
    if type(b) is not np.ndarray or a.shape != b.shape or not (a.flags.c_contiguous and b.flags.c_contiguous):
        return _multiply(a, b)
    out = np.empty_like(a)
    multiply_kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    return out


def multiply(a, b):
    """a * b; from ``policy.small_kernel_min_elements`` elements the kernel (same shapes, contiguous
    float32) or NumPy split over the threads; below, one NumPy call costs less than choosing (every Mul
    and its backward come here)."""
    n = a.size
    return a * b if n < policy.small_kernel_min_elements and n < policy.ufunc_split_elements else multiply_large(a, b)


def _scale(a, s):
    """a s, for one number s, in a's dtype"""
    return a * a.dtype.type(s)


@kernel(FAST, rows=(0, 2))
def scale_kernel(a, s, out):
    """out = a s for one float32 s"""
    for i in range(a.size):
        out[i] = a[i] * s


@dispatch(_scale)
def scale(a, s):
    a = np.ascontiguousarray(a)
    out = np.empty_like(a)
    scale_kernel(a.reshape(-1), np.float32(s), out.reshape(-1))
    return out
