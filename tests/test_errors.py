"""The error hierarchy: every typed error is a NeuralArchError and the built-in a Python user expects,
and user mistakes across the core raise them with messages naming the op and the shapes."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch import errors
from neural_arch.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DeviceError,
    DTypeError,
    GradientError,
    IndexingError,
    NeuralArchError,
    NumericalError,
    ShapeError,
    shape_str,
)


@pytest.mark.parametrize("cls,builtin", [
    (ShapeError, ValueError), (DTypeError, TypeError), (DeviceError, RuntimeError), (GradientError, RuntimeError),
    (NumericalError, FloatingPointError), (IndexingError, IndexError), (ConfigError, ValueError),
    (CheckpointError, OSError), (DataError, ValueError),
])
def test_hierarchy(cls, builtin):
    assert issubclass(cls, NeuralArchError) and issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("x")


def test_shape_str():
    assert shape_str((2, 3)) == "(2, 3)" and shape_str((4,)) == "(4,)" and shape_str(()) == "()"
    assert errors.shape_str(np.zeros((1, 0)).shape) == "(1, 0)"


@pytest.mark.parametrize("fn,cls,pattern", [
    (lambda: na.ones(2, 3) + na.ones(2, 4), ShapeError, r"Add: incompatible shapes \(2, 3\), \(2, 4\)"),
    (lambda: na.ones(2, 3) * na.ones(4), ShapeError, r"Mul: incompatible shapes \(2, 3\), \(4,\)"),
    (lambda: na.where(na.ones(3) > 0, na.ones(2), na.ones(2)), ShapeError, "Where"),
    (lambda: na.ones(2, 3) @ na.ones(2, 3), ShapeError, r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    (lambda: na.ones(2, 3).reshape(5), ShapeError, r"reshape: cannot view \(2, 3\)"),
    (lambda: na.ones(2, 3).sum(3), IndexingError, "sum: dim 3 is out of range for a tensor with 2 dims"),
    (lambda: na.ones(2, 3).sum((0, 0)), IndexingError, "sum: dim .* more than once"),
    (lambda: na.ones(2)[3], IndexingError, "Index"),
    (lambda: na.tensor([1, 2], requires_grad=True), DTypeError, "floating-point"),
    (lambda: na.tensor([1, 2]).mean(), DTypeError, r"mean: needs a floating-point input, got int64"),
    (lambda: na.zeros(2, dtype="complex-ish"), DTypeError, "unknown dtype"),
    (lambda: na.ones(2, device="cuda:x"), DeviceError, "bad device index"),
    (lambda: na.ones(2, device="cpu:1"), DeviceError, "no index 1"),
    (lambda: (na.ones(2, requires_grad=True) * 2).backward(), GradientError, "scalar output"),
    (lambda: na.ones(2).sum().backward(), GradientError, "does not require grad"),
])
def test_user_mistakes_raise_typed_errors_naming_op_and_shapes(fn, cls, pattern):
    with pytest.raises(cls, match=pattern):
        fn()


def test_errors_chain_the_low_level_cause():
    with pytest.raises(ShapeError) as info:
        na.ones(2, 3) + na.ones(2, 4)
    assert isinstance(info.value.__cause__, ValueError)  # the NumPy error is kept for debugging
