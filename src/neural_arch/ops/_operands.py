"""Turning op arguments into Tensors with the dtypes PyTorch would give them."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import array_namespace
from neural_arch.backend.dtypes import category, get_default_dtype, is_floating, promote_types, scalar_dtype
from neural_arch.errors import DTypeError

_SCALARS = (int, float, bool, np.generic)
_ndarray = np.ndarray
_np_array = np.array


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor: Tensors pass through; Python scalars take ``like``'s
    dtype by the promotion rules; anything else goes through ``na.tensor``."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, _SCALARS):
        dtype = scalar_dtype(value, like.data.dtype)
        xp = array_namespace(like.data)
        try:
            return Tensor._wrap(xp.asarray(value, dtype=dtype))
        except OverflowError:  # uint8_tensor * 300: wrap around as torch does
            return Tensor._wrap(xp.asarray(np.array(value).astype(dtype)))
    return Tensor(value)


def array_of(x):
    """The array of a Tensor; anything else (a list, a number, an array) through ``np.asarray``."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def floating(x, op: str) -> Tensor:
    """``x`` itself when it is a floating-point Tensor; anything else is a DTypeError naming ``op``."""
    if not isinstance(x, Tensor) or not is_floating(x.data.dtype):
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise DTypeError(f"{op}: needs a floating-point Tensor, got {got}; convert with .float() first")
    return x


def as_floating(x) -> Tensor:
    """``x`` as a Tensor, integer and bool ones converted to the default float dtype (what exp, log, sin ... of
    integers give)."""
    x = as_tensor(x)
    return x if is_floating(x.data.dtype) else x.to(get_default_dtype())


def binary_operands(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of one dtype, promoted as torch promotes, in one pass.

    Each operand is looked at once: a Tensor; a Python or NumPy scalar, which is *weak* (it takes the
    tensor's dtype unless it is of a higher category: bool < integer < floating < complex, and then the
    tensor is cast to the scalar's default dtype); anything else (a list, an array), made a Tensor as
    ``na.tensor`` makes it. Two tensors of different dtypes meet by category, then by weakness (a 0-d
    tensor next to one with dimensions takes the other's dtype), then by ``promote_types``. Each operand
    is converted at most once.
    """
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            da, db = a.data.dtype, b.data.dtype
            if da is db or da == db:  # the common case: nothing to decide
                return a, b
            return _promote(a, b, da, db)
        data = a.data
        if (type(b) is float or type(b) is int) and data.dtype.kind == "f" and type(data) is _ndarray:
            return a, Tensor._wrap(_np_array(b, data.dtype))  # the common `x * 0.5`, `x + 1`: no promotion
        if isinstance(b, _SCALARS):
            a, b = _with_scalar(a, b)
            return a, b
        b = Tensor(b)
    elif isinstance(b, Tensor):
        data = b.data
        if (type(a) is float or type(a) is int) and data.dtype.kind == "f" and type(data) is _ndarray:
            return Tensor._wrap(_np_array(a, data.dtype)), b  # `1 - x`, `2 * x`
        if isinstance(a, _SCALARS):
            b, a = _with_scalar(b, a)
            return a, b
        a = Tensor(a)
    else:
        a = Tensor(a)
        if isinstance(b, _SCALARS):
            return _with_scalar(a, b)
        b = Tensor(b)
    da, db = a.data.dtype, b.data.dtype
    return (a, b) if da == db else _promote(a, b, da, db)


def _with_scalar(t: Tensor, value) -> tuple[Tensor, Tensor]:
    """``t`` and the scalar ``value`` as a 0-d Tensor, both in the dtype they meet in."""
    s = as_tensor(value, t)
    dtype = s.data.dtype
    return (t if dtype == t.data.dtype else t.to(dtype)), s  # (a higher category's scalar wins outright)


def _promote(a: Tensor, b: Tensor, da, db) -> tuple[Tensor, Tensor]:
    ca, cb = category(da), category(db)
    if ca != cb:
        # the higher category wins, whatever the dimensions (torch: a 0-d float64 tensor
        # meeting an int64[3] tensor gives float64)
        target = da if ca > cb else db
    elif (a.data.ndim == 0) != (b.data.ndim == 0):
        target = db if a.data.ndim == 0 else da
    else:
        target = promote_types(da, db)
    return (a if da == target else a.to(target)), (b if db == target else b.to(target))
