"""Small in-place array helpers shared by the optimizers (NumPy, no graph)."""

from __future__ import annotations


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
