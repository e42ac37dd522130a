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


def fused_grad(p, g, *states):
    """``g`` as float32 in parameter ``p``'s memory layout, when an optimizer's fused numba step
    applies: the kernels are on, ``p`` is float32 and contiguous (row- or column-major: nn.Linear's
    weights), and every state array shares its layout. None: use the NumPy lines.

    The kernels take every array flattened with ``ravel("K")`` (memory order, a view): element i of
    each is then the same entry of the parameter. (No function layer more than this one: it runs
    for every parameter on every step.)"""
    arr = p.data
    if type(arr) is not np.ndarray or arr.dtype != _FLOAT32 or kernels.get() is None:
        return None
    if arr.flags.c_contiguous:
        for s in states:
            if not s.flags.c_contiguous:
                return None
        return np.ascontiguousarray(g, dtype=_FLOAT32)
    if arr.flags.f_contiguous:
        for s in states:
            if not s.flags.f_contiguous:
                return None
        return np.asfortranarray(g, dtype=_FLOAT32)
    return None


_FLOAT32 = np.dtype(np.float32)
