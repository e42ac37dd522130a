"""Factories: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``linspace``,
``eye``, ``empty``, ``rand``, ``randn``, ``randint`` and their ``*_like`` forms.

Floating results default to float32 (``get_default_dtype``); random ones draw
from the default generator unless ``generator=`` is given.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import to_device
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype
from neural_arch.backend.random import get_generator
from neural_arch.errors import ShapeError
from neural_arch.ops.shape import _shape_arg

__all__ = [
    "arange", "as_tensor", "empty", "empty_like", "eye", "from_numpy", "full", "full_like", "linspace",
    "normal", "ones", "ones_like", "rand", "rand_like", "randint", "randint_like", "randn", "randn_like",
    "randperm", "tensor", "zeros", "zeros_like",
]


def _shape(size) -> tuple:
    try:
        shape = _shape_arg(size)
    except TypeError:
        raise ShapeError(f"sizes must be integers, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise ShapeError(f"sizes must be non-negative, got {shape}")
    return shape


def _finish(arr, device, requires_grad) -> Tensor:
    if device is not None and str(device) != "cpu":
        arr = to_device(arr, device)
    return Tensor(arr, requires_grad=requires_grad) if requires_grad else Tensor._wrap(arr)


def _float_dtype(dtype):
    return get_default_dtype() if dtype is None else resolve_dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python numbers, lists, arrays, tensors)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        data = data.copy()
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array when it can."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (its dtype is kept)."""
    return Tensor._wrap(array)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given size (torch.zeros)."""
    return _finish(np.zeros(_shape(size), dtype=_float_dtype(dtype)), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given size (torch.ones)."""
    return _finish(np.ones(_shape(size), dtype=_float_dtype(dtype)), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of the given size (torch.empty)."""
    return _finish(np.empty(_shape(size), dtype=_float_dtype(dtype)), device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value as in torch (torch.full)."""
    if dtype is None:  # torch infers the dtype from the fill value
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, int) else None
    return _finish(np.full(_shape((size,)), fill_value, dtype=_float_dtype(dtype)), device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``: int64 for integer arguments (torch.arange)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else get_default_dtype()
    if step == 0:
        raise ShapeError("arange: step must be non-zero")
    return _finish(np.arange(start, end, step, dtype=resolve_dtype(dtype)), device, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (torch.linspace)."""
    arr = np.linspace(start, end, int(steps), dtype=np.float64).astype(_float_dtype(dtype))
    return _finish(arr, device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An n x m identity matrix (m defaults to n) (torch.eye)."""
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    d = _float_dtype(dtype)
    g = get_generator(generator)
    arr = g.random(_shape(size), dtype=d) if d in (np.float32, np.float64) else g.random(_shape(size)).astype(d)
    return _finish(arr, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    d = _float_dtype(dtype)
    g = get_generator(generator)
    shape = _shape(size)
    arr = g.standard_normal(shape, dtype=d) if d in (np.float32, np.float64) else g.standard_normal(shape).astype(d)
    return _finish(arr, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform on [low, high) (``randint(high, size)`` also works, as in torch)."""
    if high is None or isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, size if high is None else high
    if low >= high:
        raise ShapeError(f"randint: low ({low}) must be < high ({high})")
    arr = get_generator(generator).integers(low, high, size=_shape((size,)), dtype=np.int64)
    if dtype is not None:
        arr = arr.astype(resolve_dtype(dtype))
    return _finish(arr, device, False)


def randperm(n: int, generator=None, device=None) -> Tensor:
    """A random permutation of 0 .. n-1 as int64 (torch.randperm)."""
    return _finish(get_generator(generator).permutation(n).astype(np.int64), device, False)


def normal(mean: float, std: float, size, generator=None, dtype=None, device=None) -> Tensor:
    """Samples from N(mean, std^2) of ``size``, from ``generator`` or the default one (torch.normal's float form)."""
    d = _float_dtype(dtype)
    return _finish((get_generator(generator).standard_normal(_shape((size,))) * std + mean).astype(d), device, False)


def _like(fn):
    def like(x: Tensor, *args, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
        dt = x.dtype if dtype is None else dtype
        dev = x.device if device is None else device
        return fn(x.shape, *args, dtype=dt, device=dev, requires_grad=requires_grad, **kwargs)

    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"``{fn.__name__}`` with the shape (and by default dtype and device) of ``x``."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(x: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``x``'s shape (and dtype and device unless given) filled with ``fill_value``."""
    return full(x.shape, fill_value, dtype=x.dtype if dtype is None else dtype,
                device=x.device if device is None else device, requires_grad=requires_grad)


def randint_like(x: Tensor, low, high=None, generator=None, dtype=None) -> Tensor:
    """Random integers in [low, high) of ``x``'s shape (torch.randint_like)."""
    return randint(low, high, x.shape, generator=generator, dtype=x.dtype if dtype is None else dtype)


