"""Normalising ``dim`` arguments (kept apart from reduce.py, whose ``max``/``sum`` shadow the builtins)."""

from __future__ import annotations

from neural_arch.errors import IndexingError


def normalize_dims(dim, ndim: int, op: str = "reduction") -> tuple:
    """``dim`` (None, int or sequence, negatives allowed) -> sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    out = []
    for d in dims:
        d = int(d)
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexingError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
        out.append(d % max(ndim, 1) if ndim else 0)
    return tuple(sorted(set(out))) if ndim else ()
