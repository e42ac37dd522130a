"""Embedding's backward: a scatter-add of gradient rows into a table (repeated ids accumulate)."""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import EXACT, kernel


def _scatter_rows(g, ids, num_rows):
    """out (num_rows, d) with out[ids[k]] += g[k] for every k"""
    out = np.zeros((num_rows, g.shape[1]), dtype=g.dtype)
    np.add.at(out, ids, g)  # a generic scatter, slow next to the kernel's plain loop
    return out


@kernel(EXACT, rows=())
def scatter_rows_kernel(ids, g, out):
    n, d = g.shape
    for k in range(n):
        row = ids[k]
        for j in range(d):
            out[row, j] += g[k, j]


@dispatch(_scatter_rows)
def scatter_rows(g, ids, num_rows):
    out = np.zeros((num_rows, g.shape[1]), np.float32)
    scatter_rows_kernel.serial(ids, np.ascontiguousarray(g), out)  # (one thread: rows may repeat)
    return out
