"""Normalising ``dim`` arguments (kept apart from reduce.py, whose ``max``/``sum`` shadow the builtins)."""

from __future__ import annotations

import operator

from neural_arch.errors import IndexingError


def normalize_dims(dim, ndim: int, op: str = "reduction") -> tuple:
    """``dim`` (None, int or sequence, negatives allowed) -> sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if not dims:
        return tuple(range(ndim))
    out = []
    for d in dims:
        d = operator.index(d)  # ints and NumPy ints; a float dim is a TypeError
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexingError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
        out.append(d % max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise IndexingError(f"{op}: dim {dims} names a dim more than once")
    return tuple(sorted(out)) if ndim else ()
