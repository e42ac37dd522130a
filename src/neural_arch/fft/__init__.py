"""``neural_arch.fft``: torch.fft's names over ``ops/fft.py`` (layer 4, a facade).

    spec = na.fft.rfft(signal)               # complex64 for a float32 signal
    smooth = na.fft.irfft(spec * window, n=signal.shape[-1])

Every transform is differentiable (gradients as torch defines them for complex
numbers; see ``ops/complex.py``). ``norm``: "backward" (default: no scale forward,
1/n inverse), "forward" (1/n forward) or "ortho" (1/sqrt(n) both ways).
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype
from neural_arch.ops import fft as _fft
from neural_arch.ops.complex import conj as _conj
from neural_arch.ops.shape import roll

__all__ = [
    "fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "hfft2", "hfftn", "ifft", "ifft2", "ifftn", "ifftshift",
    "ihfft", "ihfft2", "ihfftn", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq", "rfftn",
]


def _one(n):
    return None if n is None else (n,)


def fft(input, n=None, dim: int = -1, norm=None) -> Tensor:  # noqa: A002 - torch's names
    """The 1-d discrete Fourier transform along ``dim`` (``n``: crop or zero-pad the input first)."""
    return _fft.c2c(input, _one(n), dim, norm, False, "fft", False)


def ifft(input, n=None, dim: int = -1, norm=None) -> Tensor:  # noqa: A002
    """The 1-d inverse transform."""
    return _fft.c2c(input, _one(n), dim, norm, True, "ifft", False)


def fft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:  # noqa: A002
    """The 2-d transform over ``dim`` (the last two dims by default)."""
    return _fft.c2c(input, s, dim, norm, False, "fft2", False)


def ifft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:  # noqa: A002
    """The 2-d inverse transform."""
    return _fft.c2c(input, s, dim, norm, True, "ifft2", False)


def fftn(input, s=None, dim=None, norm=None) -> Tensor:  # noqa: A002
    """The n-d transform over ``dim`` (all dims, or the last len(s), by default)."""
    return _fft.c2c(input, s, dim, norm, False, "fftn", True)


def ifftn(input, s=None, dim=None, norm=None) -> Tensor:  # noqa: A002
    """The n-d inverse transform."""
    return _fft.c2c(input, s, dim, norm, True, "ifftn", True)


def rfft(input, n=None, dim: int = -1, norm=None) -> Tensor:  # noqa: A002
    """The transform of a real signal: the n//2 + 1 non-negative frequencies."""
    return _fft.r2c(input, _one(n), dim, norm, "rfft", False)


def irfft(input, n=None, dim: int = -1, norm=None) -> Tensor:  # noqa: A002
    """The inverse of ``rfft``: a real signal of length ``n`` (default 2 (m - 1))."""
    return _fft.c2r(input, _one(n), dim, norm, "irfft", False)


def rfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:  # noqa: A002
    """The 2-d transform of a real input (half the last dim)."""
    return _fft.r2c(input, s, dim, norm, "rfft2", False)


def irfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:  # noqa: A002
    """The inverse of ``rfft2``."""
    return _fft.c2r(input, s, dim, norm, "irfft2", False)


def rfftn(input, s=None, dim=None, norm=None) -> Tensor:  # noqa: A002
    """The n-d transform of a real input (half the last dim)."""
    return _fft.r2c(input, s, dim, norm, "rfftn", True)


def irfftn(input, s=None, dim=None, norm=None) -> Tensor:  # noqa: A002
    """The inverse of ``rfftn``."""
    return _fft.c2r(input, s, dim, norm, "irfftn", True)


def hfft(input, n=None, dim: int = -1, norm=None) -> Tensor:  # noqa: A002
    """The transform of a Hermitian-symmetric signal given by its first half: a real spectrum.
    hfft(x, norm) = irfft(conj(x), dual norm)."""
    return irfft(_conj(input), n, dim, _fft.DUAL[_fft._check_norm(norm, "hfft")])


def ihfft(input, n=None, dim: int = -1, norm=None) -> Tensor:  # noqa: A002
    """The inverse of ``hfft``: conj(rfft(x, dual norm))."""
    return _conj(rfft(input, n, dim, _fft.DUAL[_fft._check_norm(norm, "ihfft")]))


def hfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:  # noqa: A002
    """The 2-d ``hfft``."""
    return hfftn(input, s, dim, norm)


def ihfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:  # noqa: A002
    """The 2-d ``ihfft``."""
    return ihfftn(input, s, dim, norm)


def hfftn(input, s=None, dim=None, norm=None) -> Tensor:  # noqa: A002
    """The n-d ``hfft``."""
    return irfftn(_conj(input), s, dim, _fft.DUAL[_fft._check_norm(norm, "hfftn")])


def ihfftn(input, s=None, dim=None, norm=None) -> Tensor:  # noqa: A002
    """The n-d ``ihfft``."""
    return _conj(rfftn(input, s, dim, _fft.DUAL[_fft._check_norm(norm, "ihfftn")]))


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The sample frequencies of an n-point transform: [0, 1, ..., n//2 - 1, -n//2, ..., -1] / (d n)."""
    dt = get_default_dtype() if dtype is None else resolve_dtype(dtype)
    return Tensor(np.fft.fftfreq(n, d).astype(dt), requires_grad=requires_grad)


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The non-negative sample frequencies of an n-point ``rfft``."""
    dt = get_default_dtype() if dtype is None else resolve_dtype(dtype)
    return Tensor(np.fft.rfftfreq(n, d).astype(dt), requires_grad=requires_grad)


def _shift_dims(x, dim):
    if dim is None:
        return tuple(range(x.ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def fftshift(input, dim=None) -> Tensor:  # noqa: A002
    """Move the zero frequency to the centre (a roll by n // 2 along each dim)."""
    dims = _shift_dims(input, dim)
    return roll(input, tuple(input.shape[d] // 2 for d in dims), dims)


def ifftshift(input, dim=None) -> Tensor:  # noqa: A002
    """The inverse of ``fftshift`` (a roll by -(n // 2))."""
    dims = _shift_dims(input, dim)
    return roll(input, tuple(-(input.shape[d] // 2) for d in dims), dims)
