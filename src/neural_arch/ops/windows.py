"""Window functions for signal processing (torch.hann_window and friends); constants, no gradient."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype

__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window"]


def _window(values_of, n: int, periodic: bool, dtype, requires_grad):
    """torch's convention: a periodic window of length n is the symmetric one of length n + 1, minus its last."""
    d = get_default_dtype() if dtype is None else resolve_dtype(dtype)
    if n <= 1:  # empty, or the one value 1
        arr = np.ones(n)
    else:
        arr = values_of(n + 1)[:-1] if periodic else values_of(n)
    arr = np.asarray(arr, dtype=d)
    return Tensor(arr, requires_grad=requires_grad) if requires_grad else Tensor._wrap(arr)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The Hann window (periodic by default, as torch)."""
    return _window(np.hanning, window_length, periodic, dtype, requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype=None, device=None, requires_grad=False) -> Tensor:
    """The Hamming window alpha - beta cos(...)."""
    return _window(lambda n: alpha - beta * np.cos(2 * np.pi * np.arange(n) / (n - 1)), window_length, periodic,
                   dtype, requires_grad)


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad=False) -> Tensor:
    """The Blackman window."""
    return _window(np.blackman, window_length, periodic, dtype, requires_grad)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad=False) -> Tensor:
    """The Bartlett (triangular) window."""
    return _window(np.bartlett, window_length, periodic, dtype, requires_grad)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, device=None,
                  requires_grad=False) -> Tensor:
    """The Kaiser window with shape parameter ``beta``."""
    return _window(lambda n: np.kaiser(n, beta), window_length, periodic, dtype, requires_grad)
