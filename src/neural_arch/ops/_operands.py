"""Turning op arguments into Tensors with the dtypes PyTorch would give them."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import array_namespace
from neural_arch.backend.dtypes import category, promote_types, scalar_dtype

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


def _weak(t: Tensor) -> bool:
    return t.data.ndim == 0


def binary_operands(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of one dtype, promoted as torch promotes.

    Python scalars are *weak*: they never widen a tensor of their own
    category. So are 0-d tensors next to tensors with dimensions.
    """
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a.data.dtype is b.data.dtype or a.data.dtype == b.data.dtype:
                return a, b
        elif (type(b) is float or type(b) is int) and a.data.dtype.kind == "f" and type(a.data) is _ndarray:
            return a, Tensor._wrap(_np_array(b, a.data.dtype))  # the common `x * 0.5`, `x + 1`: no promotion
        else:
            b = as_tensor(b, a)
    else:
        a = as_tensor(a, b if isinstance(b, Tensor) else None)
        b = as_tensor(b, a)
    da, db = a.data.dtype, b.data.dtype
    if da == db:
        return a, b
    ca, cb = category(da), category(db)
    if ca != cb:
        # the higher category wins, whatever the dimensions (torch: a 0-d float64 tensor
        # meeting an int64[3] tensor gives float64)
        target = da if ca > cb else db
    elif _weak(a) != _weak(b):
        target = db if _weak(a) else da
    else:
        target = promote_types(da, db)
    return (a if da == target else a.to(target)), (b if db == target else b.to(target))
