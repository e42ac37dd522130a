"""Local response normalisation (AlexNet's), as torch composes it:

    y_c = x_c / (k + alpha / n * sum_{c' in window(c)} x_{c'}^2)^beta

the window of n channels centred on c (n // 2 before, (n - 1) // 2 after), zeros past the edges.
"""

from __future__ import annotations

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops.elementwise import pow as _pow
from neural_arch.ops.shape import pad

__all__ = ["local_response_norm"]


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Normalise each element by the squares of its ``size`` neighbouring channels (dim 1) (see the module doc)."""
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expected (N, C, *) with at least 3 dims, got {shape_str(input.shape)}")
    if size < 1:
        raise ConfigError(f"local_response_norm: size must be >= 1, got {size}")
    C = input.shape[1]
    sq = input * input
    widths = (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2)
    padded = pad(sq, widths)
    total = padded[:, 0:C]
    for j in range(1, size):
        total = total + padded[:, j:j + C]
    return input / _pow(total * (alpha / size) + k, beta)
