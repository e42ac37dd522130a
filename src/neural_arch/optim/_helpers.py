"""Small in-place array helpers shared by the optimizers (NumPy, no graph)."""

from __future__ import annotations

import numpy as np

from neural_arch.backend import kernels


def lerp_(a, b, weight: float):
    """``a <- a + weight * (b - a)`` in place, computed the way torch's ``lerp_`` is
    (from the nearer end), so float32 trajectories match torch's to the last bit more often."""
    if weight < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1.0 - weight)
    return a


def grad_for_step(p, g, maximize: bool, weight_decay: float):
    """The gradient an update uses: negated for ``maximize``, plus ``weight_decay * p`` (L2)
    for coupled weight decay. Never modifies ``p.grad`` in place."""
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p.data
    return g


def fused_views(p, g, *states):
    """``(kernels, [p, g, *states] flattened)`` for an optimizer's fused numba step, or None (then use
    the NumPy lines): float32 parameters stored contiguously, row- or column-major (nn.Linear's
    weights), with their state arrays in the same layout. ``g`` is converted to that layout.

    ``ravel("K")`` flattens each contiguous array in memory order, as a view: element i of every one
    is the same entry of the parameter when all share its layout."""
    k = kernels.get()
    arr = p.data
    if k is None or type(arr) is not np.ndarray or arr.dtype != _FLOAT32:
        return None
    # (loops, not all(...) over a generator: this runs for every parameter on every step)
    if arr.flags.c_contiguous:
        for s in states:
            if not s.flags.c_contiguous:
                return None
        g = np.ascontiguousarray(g, dtype=_FLOAT32)
    elif arr.flags.f_contiguous:
        for s in states:
            if not s.flags.f_contiguous:
                return None
        g = np.asfortranarray(g, dtype=_FLOAT32)
    else:
        return None
    return k, (arr.ravel("K"), g.ravel("K"), *[s.ravel("K") for s in states])


_FLOAT32 = np.dtype(np.float32)
