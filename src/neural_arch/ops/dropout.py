"""Dropout: zero elements (or whole channels) with probability p, scale the rest by 1/(1 - p).

Random numbers come from ``generator=`` or na's default generator (seed it with
``na.manual_seed``), so a run is reproducible; the stream differs from torch's.

Elementwise dropout draws one 64-bit seed from the generator and decides element k by the k-th
output of SplitMix64 from that seed (a counter-based stream, ``backend.kernels.dropout``): the
draws are computed while x is scaled, and the backward computes them again instead of keeping a
mask. Channel dropout and attention's dropout draw their (stored) masks from the same stream
(``keep_mask``).
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.kernels.dropout import apply_mask
from neural_arch.backend.random import get_generator
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops._operands import floating

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d"]


class Dropout(Function):  # (half inputs: one product with a mask in their dtype, as torch)
    """y = x m / (1 - p),  m ~ Bernoulli(1 - p) (broadcast over channels for dropout2d)
    dy/dx = m / (1 - p)

    The mask (of ``mask_shape``) is drawn inside forward, so that running the op again (a
    compiled step's replay) draws a fresh one, as eager does."""

    draws_random = True

    @staticmethod
    def forward(ctx, x, p, mask_shape, generator=None):
        mask = keep_mask(mask_shape, p, x.dtype, generator)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved_tensors[0]


class CounterDropout(Function):
    """y = x m / (1 - p),  m_k = [splitmix64(seed, k) >> 40 >= p 2^24]   (k: the flat index)
    dy/dx = m / (1 - p), recomputed from the seed: nothing is saved but three numbers."""

    half = "float32"
    draws_random = True  # the seed is drawn inside forward: a replay draws a fresh one

    @staticmethod
    def forward(ctx, x, p, generator=None):
        ctx.draw = seed, threshold, scale = _draw(p, generator)
        return apply_mask(x, seed, threshold, scale)

    @staticmethod
    def backward(ctx, grad):
        return apply_mask(grad, *ctx.draw)


def _check(input, p, op):
    floating(input, op)
    if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        raise ConfigError(f"{op}: dropout probability must be in [0, 1], got {p}")


def _draw(p: float, generator):
    """(seed, threshold, scale) of one dropout call: a fresh 64-bit seed from the generator, and
    P(keep) = 1 - threshold / 2^24, within 2^-25 of 1 - p."""
    seed = get_generator(generator).integers(0, 1 << 64, dtype=np.uint64)
    return seed, np.uint64(round(p * (1 << 24))), 1 / (1 - p)


def keep_mask(shape, p: float, dtype, generator=None):
    """The scaled keep-mask m / (1 - p) in ``dtype`` (zeros when p = 1), from the same stream as
    ``dropout``: channel dropout's small masks and attention's dropout of its weights."""
    if p == 1:
        return np.zeros(shape, dtype=dtype)
    return apply_mask(np.ones(shape, dtype=dtype), *_draw(p, generator))


def _dropout(input, p, training, mask_shape, op, generator):
    _check(input, p, op)
    if not training or p == 0:
        return input
    return Dropout.apply(input, p=p, mask_shape=mask_shape, generator=generator)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the others by 1/(1 - p).
    ``inplace`` is accepted and ignored; ``generator`` (ours) picks the random stream."""
    _check(input, p, "dropout")
    if not training or p == 0:
        return input
    if p == 1:
        return Dropout.apply(input, p=1, mask_shape=input.shape)  # zeros
    return CounterDropout.apply(input, p=p, generator=generator)


def _channel_dropout(input, p, training, generator, op, batched_ndim):
    """Drop whole channels: the mask has the (N, C) dims (or C alone when unbatched) and 1s elsewhere."""
    _check(input, p, op)
    if input.data.ndim not in (batched_ndim - 1, batched_ndim):
        raise ShapeError(f"{op}: expected a {batched_ndim - 1}-d or {batched_ndim}-d input, got "
                         f"{shape_str(input.shape)}")
    shape = input.data.shape
    lead = 2 if input.data.ndim == batched_ndim else 1
    return _dropout(input, p, training, shape[:lead] + (1,) * (len(shape) - lead), op, generator)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Channel dropout for (N, C, L) or (C, L) inputs."""
    return _channel_dropout(input, p, training, generator, "dropout1d", 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Channel dropout for (N, C, H, W) inputs. A 3-d input is taken as (N, C, L), as torch
    does (with its warning): one mask value per (sample, channel)."""
    if isinstance(input, Tensor) and input.data.ndim == 3:
        return _dropout(input, p, training, input.data.shape[:2] + (1,), "dropout2d", generator)
    return _channel_dropout(input, p, training, generator, "dropout2d", 4)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Channel dropout for (N, C, D, H, W) or (C, D, H, W) inputs."""
    return _channel_dropout(input, p, training, generator, "dropout3d", 5)
