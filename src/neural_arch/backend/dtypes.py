"""Dtypes and PyTorch-like type promotion.

Dtypes are NumPy dtype objects (``na.float32 is np.dtype('float32')``), so a
tensor's dtype is just its array's dtype. ``bfloat16`` comes from
``ml_dtypes`` when that package is installed, else it is ``None``.

Promotion follows PyTorch, not NumPy, in the two places they differ:

* A Python scalar never widens a tensor of its own category:
  ``float32_tensor * 2.0`` stays float32, ``int_tensor * 2.5`` becomes the
  default float dtype (float32), not float64.
* Between tensors of one category, a 0-d tensor does not widen a tensor with
  dimensions: ``float32[3] + float64[]`` is float32.
"""

from __future__ import annotations

import numpy as np

from neural_arch.errors import DTypeError

bool_ = np.dtype(np.bool_)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
complex64 = np.dtype(np.complex64)  # the fft ops' outputs (neural_arch.fft)
complex128 = np.dtype(np.complex128)
try:  # optional: bfloat16 has no NumPy-native dtype
    import ml_dtypes

    bfloat16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    bfloat16 = None

_FLOATS = {float16, float32, float64} | ({bfloat16} if bfloat16 is not None else set())

_default_dtype = float32

_BY_NAME = {
    "bool": bool_, "uint8": uint8, "int8": int8, "int16": int16, "int32": int32, "int64": int64,
    "long": int64, "int": int32, "float16": float16, "half": float16, "float32": float32,
    "float": float32, "float64": float64, "double": float64,
    "complex64": complex64, "cfloat": complex64, "complex128": complex128, "cdouble": complex128,
}
if bfloat16 is not None:
    _BY_NAME["bfloat16"] = bfloat16


def get_default_dtype() -> np.dtype:
    """The dtype of floating tensors created from Python floats (float32)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Change the default floating dtype (float32 or float64, as in torch)."""
    global _default_dtype
    d = resolve_dtype(dtype)
    if d not in (float32, float64, float16) and d != bfloat16:
        raise DTypeError(f"default dtype must be a floating dtype, got {d}")
    _default_dtype = d


def resolve_dtype(dtype) -> np.dtype:
    """Turn ``'float32'``, ``np.float32``, ``na.float32`` or a torch-like name into a dtype."""
    if isinstance(dtype, np.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.").removeprefix("neural_arch.")
        if name in _BY_NAME:
            return _BY_NAME[name]
        if name == "bfloat16":
            raise DTypeError("bfloat16 needs the ml_dtypes package: pip install ml_dtypes")
        raise DTypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_BY_NAME)}")
    if dtype is float:
        return _default_dtype
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    try:
        return np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"unknown dtype {dtype!r}") from None


def is_floating(dtype) -> bool:
    """True for the floating dtypes (float16, bfloat16, float32, float64)."""
    return dtype in _FLOATS


def category(dtype) -> int:
    """0 for bool, 1 for integers, 2 for floating dtypes, 3 for complex ones."""
    if dtype == bool_:
        return 0
    if dtype.kind == "c":
        return 3
    return 2 if dtype in _FLOATS else 1


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """The common dtype of two tensors' dtypes (PyTorch's table for the common cases)."""
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:  # torch: the higher category wins outright (int64 + float16 -> float16)
        return a if ca > cb else b
    if bfloat16 is not None and bfloat16 in (a, b):
        other = b if a == bfloat16 else a
        if other == float16:
            return float32  # as torch: neither holds the other
        return other  # the other is float16/32/64 here
    if a == uint8 and b == int8 or a == int8 and b == uint8:
        return int16
    return np.promote_types(a, b)


def scalar_dtype(value, tensor_dtype: np.dtype) -> np.dtype:
    """The dtype a Python scalar takes when combined with a tensor of ``tensor_dtype``."""
    kind = 0 if isinstance(value, (bool, np.bool_)) else 2 if isinstance(value, (float, np.floating)) else 1
    if kind <= category(tensor_dtype):
        return tensor_dtype
    return _default_dtype if kind == 2 else int64


def finfo(type=None):  # noqa: A002 - torch's name
    """The limits of a floating dtype (``torch.finfo``): ``bits``, ``eps``, ``max``, ``min``, ``tiny``
    (= ``smallest_normal``), ``resolution``; the default dtype's when none is given. NumPy's ``finfo`` (ml_dtypes'
    for bfloat16), whose ``dtype`` attribute is a NumPy dtype, not a string as torch's."""
    dtype = _default_dtype if type is None else resolve_dtype(type)
    if dtype not in _FLOATS:
        raise DTypeError(f"finfo: {dtype} is not a floating dtype; use iinfo for integers")
    if bfloat16 is not None and dtype == bfloat16:
        import ml_dtypes  # noqa: PLC0415 - present whenever bfloat16 is

        return ml_dtypes.finfo(dtype)
    return np.finfo(dtype)


def iinfo(type):  # noqa: A002
    """The limits of an integer dtype (``torch.iinfo``): ``bits``, ``max``, ``min``."""
    dtype = resolve_dtype(type)
    if dtype.kind not in "iu":
        raise DTypeError(f"iinfo: {dtype} is not an integer dtype; use finfo for floating dtypes")
    return np.iinfo(dtype)
