"""Dtypes and type promotion: the whole table against torch.promote_types and torch's result_type."""

import itertools

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.backend.dtypes import promote_types, resolve_dtype
from neural_arch.errors import DTypeError

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("a,b", list(itertools.combinations_with_replacement(NAMES, 2)))
def test_promote_types_matches_torch(a, b):
    ours = promote_types(resolve_dtype(a), resolve_dtype(b))
    ref = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert str(ours) == str(ref).removeprefix("torch."), f"{a} + {b}"
    assert ours == promote_types(resolve_dtype(b), resolve_dtype(a))


@pytest.mark.parametrize("a,b", list(itertools.product(["bool", "uint8", "int32", "int64", "float16", "float32",
                                                         "float64"], repeat=2)))
@pytest.mark.parametrize("dims", [("t", "t"), ("t", "0d"), ("0d", "t")])
def test_binary_op_result_dtype_matches_torch(a, b, dims):
    def make(lib, name, kind):
        shape = (3,) if kind == "t" else ()
        return lib.ones(shape, dtype=getattr(lib, name)) if lib is torch else lib.ones(*shape, dtype=name)

    ours = make(na, a, dims[0]) + make(na, b, dims[1])
    ref = make(torch, a, dims[0]) + make(torch, b, dims[1])
    assert str(ours.dtype) == str(ref.dtype).removeprefix("torch.")


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_python_scalar_promotion_matches_torch(dtype, scalar):
    ours = na.ones(2, dtype=dtype) * scalar
    ref = torch.ones(2, dtype=getattr(torch, dtype)) * scalar
    assert str(ours.dtype) == str(ref.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy().astype(np.float64), ref.float().numpy().astype(np.float64), rtol=1e-2)


def test_integer_scalar_overflow_wraps_like_torch():
    assert (na.ones(2, dtype="uint8") * 300).tolist() == (torch.ones(2, dtype=torch.uint8) * 300).tolist()


def test_resolve_dtype_accepts_many_spellings():
    for spelling in ["float32", "float", "torch.float32", np.float32, na.float32, float]:
        assert resolve_dtype(spelling) == np.float32
    assert resolve_dtype(int) == np.int64 and resolve_dtype(bool) == np.bool_ and resolve_dtype("long") == np.int64
    assert resolve_dtype("half") == np.float16 and resolve_dtype("double") == np.float64
    assert na.bfloat16 is not None and resolve_dtype("bfloat16") == na.bfloat16
    with pytest.raises(DTypeError, match="unknown dtype 'float7'"):
        resolve_dtype("float7")


def test_default_dtype_can_be_changed_and_restored():
    assert na.get_default_dtype() == np.float32
    na.set_default_dtype(na.float64)
    try:
        assert na.tensor([1.5]).dtype == np.float64 and na.zeros(2).dtype == np.float64
        assert (na.tensor([1, 2]) * 0.5).dtype == np.float64
    finally:
        na.set_default_dtype(na.float32)
    assert na.tensor([1.5]).dtype == np.float32
    with pytest.raises(DTypeError, match="floating"):
        na.set_default_dtype("int64")


def test_bfloat16_arithmetic_and_gradients():
    x = na.tensor([1.0, 2.0, 3.0], dtype="bfloat16", requires_grad=True)
    y = (x * x).sum()
    assert y.dtype == na.bfloat16
    y.backward()
    assert x.grad.dtype == na.bfloat16 and x.grad.float().tolist() == [2.0, 4.0, 6.0]
    assert (x.detach() + na.ones(3, dtype="float16")).dtype == np.float32  # as torch
