"""Row permutation, the data movement of a mixture-of-experts layer (tokens grouped by expert and back)."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import IndexingError

__all__ = ["permute_rows"]


class PermuteRows(Function):
    """y = x[order] for a permutation ``order`` of the rows        dL/dx = (dL/dy)[inverse(order)]

    A general gather's backward must scatter-add (rows may repeat); a permutation's is
    another permutation, a plain take.
    """

    @staticmethod
    def forward(ctx, x, order, inverse):
        ctx.inverse = inverse
        return np.take(x, order, axis=0)

    @staticmethod
    def backward(ctx, grad):
        return np.take(grad, ctx.inverse, axis=0)


def permute_rows(x: Tensor, order) -> Tensor:
    """``x[order]`` along dim 0, where ``order`` holds every row index exactly once."""
    order = np.asarray(getattr(order, "data", order))
    n = x.shape[0]
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise IndexingError(f"permute_rows: order must be a permutation of range({n}), got shape {order.shape}")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(n)
    return PermuteRows.apply(x, order=order, inverse=inverse)
