"""torch's legacy typed constructors: ``FloatTensor``, ``DoubleTensor``, ``HalfTensor``,
``BFloat16Tensor``, ``LongTensor``, ``IntTensor``, ``ShortTensor``, ``CharTensor``,
``ByteTensor``, ``BoolTensor``.

As in torch, ``LongTensor(2, 3)`` makes a tensor of that shape (torch leaves it uninitialised;
ours is zeros), ``LongTensor([1, 2])`` one holding that data (a list or tuple is always data,
and a Tensor or array is converted), ``LongTensor()`` an empty one. They are not classes
of their own: what they return is a plain ``Tensor``, and ``isinstance(t, FloatTensor)`` asks
whether ``t`` is a float32 tensor, as in torch.

NOTE: torch reads a ``torch.Size`` argument as a shape; our shapes are plain tuples, so
``FloatTensor(x.shape)`` is a tensor holding the numbers of the shape. Write
``FloatTensor(*x.shape)`` (or ``na.zeros(x.shape)``) for the other meaning.
"""

from __future__ import annotations

import numbers

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import dtypes
from neural_arch.errors import DTypeError

__all__ = ["BFloat16Tensor", "BoolTensor", "ByteTensor", "CharTensor", "DoubleTensor", "FloatTensor", "HalfTensor",
           "IntTensor", "LongTensor", "ShortTensor"]


class _TypedTensorMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<legacy constructor {cls.__name__} ({cls.dtype})>"


class _TypedTensor(metaclass=_TypedTensorMeta):
    dtype: np.dtype

    def __new__(cls, *args, device=None):
        if cls.dtype is None:
            raise DTypeError(f"{cls.__name__}: bfloat16 needs the ml_dtypes package (pip install ml_dtypes)")
        if not args:
            return Tensor(np.empty((0,), cls.dtype), device=device)
        if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args):
            return Tensor(np.zeros(tuple(int(a) for a in args), cls.dtype), device=device)
        if len(args) != 1:
            raise DTypeError(f"{cls.__name__}(...) takes sizes (ints) or one sequence of data, got {args!r}")
        data = args[0]
        data = data.data if isinstance(data, Tensor) else data
        return Tensor(np.array(data, dtype=cls.dtype), device=device)


def _typed(name: str, dtype) -> type:
    dtype = None if dtype is None else np.dtype(dtype)  # (None: bfloat16 without ml_dtypes)
    what = getattr(dtype, "name", name)
    doc = f"``{name}(*sizes)`` / ``{name}(data)``: a {what} tensor (torch's legacy constructor)."
    return _TypedTensorMeta(name, (_TypedTensor,), {"dtype": dtype, "__doc__": doc})


FloatTensor = _typed("FloatTensor", dtypes.float32)
DoubleTensor = _typed("DoubleTensor", dtypes.float64)
HalfTensor = _typed("HalfTensor", dtypes.float16)
BFloat16Tensor = _typed("BFloat16Tensor", dtypes.bfloat16)
LongTensor = _typed("LongTensor", dtypes.int64)
IntTensor = _typed("IntTensor", dtypes.int32)
ShortTensor = _typed("ShortTensor", dtypes.int16)
CharTensor = _typed("CharTensor", dtypes.int8)
ByteTensor = _typed("ByteTensor", dtypes.uint8)
BoolTensor = _typed("BoolTensor", dtypes.bool_)
