"""Dropout's random stream: counter-based, so the mask is never stored.

Element k of a call with seed s is kept when the top 24 bits of the k-th output of SplitMix64
started at s are >= threshold = p 2^24; it is then scaled by 1 / (1 - p). Any element's draw is
a pure function of (seed, k): the backward recomputes it, and ranges of a threaded call need no
shared state.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import EXACT, F, U, inline, kernel

_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def scaled_keep_mask(shape, seed, threshold, scale, dtype):
    """m / (1 - p) for every element (uint64 array arithmetic wraps around modulo 2^64, as the
    kernel's does)."""
    z = np.arange(1, math.prod(shape) + 1, dtype=np.uint64) * _GOLDEN + seed  # state after k + 1 steps
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    keep = ((z ^ (z >> np.uint64(31))) >> np.uint64(40)) >= threshold
    return np.where(keep, np.asarray(scale, dtype), np.asarray(0, dtype)).reshape(shape)


def _apply_mask(x, seed, threshold, scale):
    """x m / (1 - p) (as x * mask: NaN and inf times 0 give NaN, as in torch)"""
    with np.errstate(invalid="ignore"):
        return x * scaled_keep_mask(x.shape, seed, threshold, scale, x.dtype)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment (2^64 / golden ratio)


@inline(EXACT)
def _splitmix64(seed, i):
    """The i-th output of SplitMix64 (Steele, Lea & Flood, 2014) started at ``seed``: its state after
    i + 1 steps is seed + (i + 1) golden, mixed by two multiply-xorshifts. Any element's draw is a pure
    function of (seed, i), so ranges of a split call need no shared state."""
    z = seed + (i + U(1)) * _GOLDEN
    z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
    return z ^ (z >> U(31))


@kernel(EXACT, rows=(0, 1), offset=3)
def dropout_kernel(x, out, seed, start, threshold, scale):
    """out[i] = x[i] scale if the draw of element start + i keeps it, else x[i] 0 (as x * mask: NaN stays
    NaN). Element k is kept when the top 24 bits of splitmix64(seed, k) are >= threshold = p 2^24.
    The same call on the upstream gradient is the backward: the mask is never stored."""
    for i in range(x.size):
        keep = (_splitmix64(seed, U(start) + U(i)) >> U(40)) >= threshold
        out[i] = x[i] * (scale if keep else F(0.0))


@dispatch(_apply_mask)
def apply_mask(x, seed, threshold, scale):
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, np.float32)
    dropout_kernel(x.reshape(-1), out.reshape(-1), seed, 0, threshold, np.float32(scale))
    return out
