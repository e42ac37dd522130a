"""Alpha dropout (for SELU networks): keeps the mean and variance of its input.

With the SELU constant alpha' = 1.7580993408473766 and a = ((1 - p)(1 + p alpha'^2))^(-1/2):
a kept element becomes ``a x + a alpha' p``, a dropped one ``-a alpha' (1 - p)`` (torch's formula);
dy/dx = a on kept elements, 0 on dropped ones. ``feature_alpha_dropout`` drops whole channels.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import get_generator
from neural_arch.ops.dropout import _check

__all__ = ["alpha_dropout", "feature_alpha_dropout"]

_ALPHA = 1.7580993408473766


def _alpha(input: Tensor, p: float, training: bool, mask_shape, op: str, generator) -> Tensor:
    _check(input, p, op)
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    keep = (get_generator(generator).random(mask_shape) >= p).astype(input.data.dtype)
    a = 1.0 / np.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    shift = ((keep - 1) * (_ALPHA * a) + _ALPHA * a * p).astype(input.data.dtype)
    return input * Tensor((keep * a).astype(input.data.dtype)) + Tensor(shift)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False,
                  generator=None) -> Tensor:
    """Alpha dropout of each element (training only; see the module doc)."""
    return _alpha(input, p, training, input.shape, "alpha_dropout", generator)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False,
                          generator=None) -> Tensor:
    """Alpha dropout of whole channels of ``(N, C, *)`` (training only)."""
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha(input, p, training, shape, "feature_alpha_dropout", generator)
