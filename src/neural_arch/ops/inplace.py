"""torch's in-place and ``new_*`` Tensor methods that PyTorch scripts use outside the graph: ``store``, behind
every in-place method (``add_``, ``clamp_``, ``masked_fill_``, ...: tensor_methods.py makes them from the
out-of-place ops), and the ones with no out-of-place op: ``zero_``, ``fill_``, ``copy_``, ``uniform_``,
``normal_``, and ``new_zeros`` / ``new_ones`` / ``new_full`` / ``new_empty`` / ``new_tensor``.

An in-place method computes the out-of-place op and writes the result into the tensor's array
(``Tensor.__setitem__``), so it is allowed where that is: on tensors that need no gradient, or
under ``no_grad()`` (the manual SGD step ``p.add_(p.grad, alpha=-lr)``, weight initialisation).
On a tensor that requires grad with grad mode on it raises ``GradientError`` (torch would record
it in the graph; we do not track versions). The result keeps the tensor's dtype and shape.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import category
from neural_arch.backend.random import get_generator
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops.shape import _shape_arg as _size


def store(self: Tensor, out, name: str, instead: str = "the out-of-place form") -> Tensor:
    """Write ``out`` into ``self``'s array (same shape, or broadcast to it; no silent narrowing to an int or bool
    tensor) and return ``self``. ``instead`` names what to write in the error messages' advice."""
    data = out.data if isinstance(out, Tensor) else np.asarray(out)
    if data.dtype != self.data.dtype and category(data.dtype) > category(self.data.dtype):
        raise DTypeError(f"{name}: the result is {data.dtype} and cannot be stored in this {self.dtype} tensor; "
                         f"use {instead}")
    if data.shape != self.data.shape:
        try:
            data = np.broadcast_to(data, self.data.shape)
        except ValueError:
            raise ShapeError(f"{name}: the result has shape {shape_str(data.shape)}, which does not fit this "
                             f"tensor's shape {shape_str(self.shape)}; use {instead}") from None
    self[...] = data.astype(self.data.dtype, copy=False)
    return self


def zero_(self):
    """Set every entry to 0, in place."""
    return store(self, np.zeros_like(self.data), "zero_")


def fill_(self, value):
    """Set every entry to ``value``, in place."""
    value = value.data if isinstance(value, Tensor) else value
    return store(self, np.full_like(self.data, value), "fill_")


def copy_(self, src, non_blocking: bool = False):
    """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor."""
    data = src.data if isinstance(src, Tensor) else np.asarray(src)
    self[...] = np.broadcast_to(data, self.data.shape).astype(self.data.dtype, copy=False)
    return self


def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
    """Fill with draws from U(a, b) (our generator: the numbers differ from torch's)."""
    draws = get_generator(generator).uniform(a, b, size=self.data.shape)
    return store(self, draws.astype(self.data.dtype), "uniform_")


def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
    """Fill with draws from N(mean, std^2) (our generator: the numbers differ from torch's)."""
    draws = get_generator(generator).normal(mean, std, size=self.data.shape)
    return store(self, draws.astype(self.data.dtype), "normal_")


def _new(self, data, dtype, requires_grad):
    return Tensor(np.asarray(data, dtype=self.data.dtype if dtype is None else dtype), requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False):
    """Zeros of ``size``, with this tensor's dtype unless ``dtype`` is given."""
    return _new(self, np.zeros(_size(size)), dtype, requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False):
    """Ones of ``size``, with this tensor's dtype unless ``dtype`` is given."""
    return _new(self, np.ones(_size(size)), dtype, requires_grad)


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False):
    """``fill_value`` everywhere in a tensor of ``size``, with this tensor's dtype unless ``dtype`` is given."""
    return _new(self, np.full(_size((size,)), fill_value), dtype, requires_grad)


def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False):
    """A tensor of ``size`` (zeros here; torch leaves it uninitialised)."""
    return _new(self, np.zeros(_size(size)), dtype, requires_grad)


def new_tensor(self, data, *, dtype=None, device=None, requires_grad: bool = False):
    """A copy of ``data`` as a tensor, with this tensor's dtype unless ``dtype`` is given."""
    return _new(self, data.data if isinstance(data, Tensor) else data, dtype, requires_grad)


METHODS = {f.__name__: f for f in (zero_, fill_, copy_, uniform_, normal_, new_zeros, new_ones, new_full, new_empty,
                                    new_tensor)}
