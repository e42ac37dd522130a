"""``embedding_bag``: the sum, mean or max of the embeddings of each bag of ids, without the (bags, length, dim)
intermediate for sum and mean.

With E = weight[ids] (N, dim) for the N ids and a bags-by-ids matrix M (M[b, i] = 1 or the per-sample
weight when id i is in bag b, divided by the bag's size for 'mean'):

    sum / mean:  y = M E       dL/dE = M^T g  (then the embedding's scatter-add into weight's rows)
    max:         y[b] = max over the bag's rows of E        (the gradient goes to the arg-max row)

Ids equal to ``padding_idx`` are left out of their bag (and of its size); an empty bag gives zeros.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops import reduce as _r
from neural_arch.ops.embedding import embedding
from neural_arch.ops.index import index_select
from neural_arch.ops.linalg import matmul
from neural_arch.ops.shape import cat

__all__ = ["embedding_bag"]


def _bags(input, offsets, include_last_offset, op):
    """(flat ids, bag start offsets (B + 1,)) from a 2-d batch of bags or 1-d ids with offsets."""
    ids = np.asarray(input.data if isinstance(input, Tensor) else input)
    if ids.ndim == 2:
        if offsets is not None:
            raise ConfigError(f"{op}: offsets must be None for a 2-d input (each row is a bag)")
        B, L = ids.shape
        return ids.reshape(-1), np.arange(B + 1) * L
    if ids.ndim != 1 or offsets is None:
        raise ShapeError(f"{op}: expected a 2-d input (bags, ids) or a 1-d input with offsets, got "
                         f"{shape_str(ids.shape)} with offsets={'None' if offsets is None else 'given'}")
    starts = np.asarray(offsets.data if isinstance(offsets, Tensor) else offsets).astype(np.int64).reshape(-1)
    if starts.size == 0 or starts[0] != 0 or np.any(np.diff(starts) < 0) or starts[-1] > ids.size:
        raise ShapeError(f"{op}: offsets must start at 0 and not decrease nor pass {ids.size}, got {starts.tolist()}")
    bounds = starts if include_last_offset else np.append(starts, ids.size)
    return ids, bounds


def embedding_bag(input, weight: Tensor, offsets=None, max_norm=None, norm_type: float = 2, scale_grad_by_freq=False,
                  mode: str = "mean", sparse: bool = False, per_sample_weights=None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """torch's ``F.embedding_bag``: ``(bags, dim)`` reductions (``mode`` 'sum', 'mean' or 'max') of the
    embeddings of each bag (see the module doc). ``per_sample_weights`` (same shape as the ids) scale each
    embedding, with mode 'sum' only."""
    op = "embedding_bag"
    if mode not in ("sum", "mean", "max"):
        raise ConfigError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise ConfigError(f"{op}: per_sample_weights is only supported with mode='sum', got mode={mode!r}")
    ids, bounds = _bags(input, offsets, include_last_offset, op)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    E = embedding(Tensor(ids.astype(np.int64)), weight, padding_idx, max_norm, norm_type, scale_grad_by_freq)
    B, N = bounds.size - 1, ids.size
    bag_of = np.repeat(np.arange(B), np.diff(bounds))  # the bag of each id
    counted = np.ones(N, bool) if padding_idx is None else ids != padding_idx
    if mode == "max":
        lengths = np.bincount(bag_of[counted], minlength=B)
        width = max(int(lengths.max()) if B else 0, 1)
        dt = weight.data.dtype
        filler = Tensor(np.stack([np.full(weight.shape[1], -np.inf, dt), np.zeros(weight.shape[1], dt)]))
        index = np.full((B, width), N, np.int64)  # -inf where a bag is shorter
        index[lengths == 0, 0] = N + 1  # an empty bag: one zero row
        rows = np.flatnonzero(counted)
        for b in range(B):
            mine = rows[bag_of[rows] == b]
            index[b, :mine.size] = mine
        gathered = index_select(cat([E, filler], 0), 0, index.reshape(-1)).reshape(B, width, weight.shape[1])
        return _r.amax(gathered, 1)
    M = np.zeros((B, N), weight.data.dtype)
    M[bag_of[counted], np.flatnonzero(counted)] = 1
    if mode == "mean":
        sizes = M.sum(axis=1, keepdims=True)
        M = M / np.maximum(sizes, 1)
    if per_sample_weights is not None:
        w = per_sample_weights.reshape(1, N) if isinstance(per_sample_weights, Tensor) else Tensor(
            np.asarray(per_sample_weights, weight.data.dtype).reshape(1, N))
        return matmul(Tensor(M) * w, E)
    return matmul(Tensor(M), E)
