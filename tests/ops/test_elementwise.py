"""Elementwise ops: parity with torch (forward, backward, float64/float32) and gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from parity import check, gradcheck, rand_pos, randn

import neural_arch as na

BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "maximum": lambda x, y: x.maximum(y),
    "minimum": lambda x, y: x.minimum(y),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3)), ((0, 3), (3,))])
def test_binary_parity(name, shapes):
    a, b = randn(*shapes[0], seed=1), rand_pos(*shapes[1], seed=2)
    check(BINARY[name], [a, b])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name):
    gradcheck(BINARY[name], [randn(2, 3, seed=3), rand_pos(3, seed=4)])


@settings(max_examples=25, deadline=None)
@given(mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4))
def test_broadcasting_shapes_hypothesis(shapes):
    a, b = randn(*shapes.input_shapes[0], seed=5), rand_pos(*shapes.input_shapes[1], seed=6)
    check(lambda x, y: x * y + x / y - y, [a, b])


def test_noncontiguous_inputs():
    check(lambda x, y: x * y, [randn(4, 5, seed=1), randn(4, 5, seed=2)], noncontig=True)


def test_ties_in_maximum_split_the_gradient():
    a = np.array([1.0, 2.0, 3.0])
    check(lambda x, y: x.maximum(y), [a, a.copy()])
    check(lambda x, y: x.minimum(y), [a, np.array([1.0, 0.0, 5.0])])


UNARY = {
    "exp": (lambda x: x.exp(), randn),
    "log": (lambda x: x.log(), rand_pos),
    "log1p": (lambda x: x.log1p(), rand_pos),
    "expm1": (lambda x: x.expm1(), randn),
    "sqrt": (lambda x: x.sqrt(), rand_pos),
    "rsqrt": (lambda x: x.rsqrt(), rand_pos),
    "abs": (lambda x: x.abs(), randn),
    "sin": (lambda x: x.sin(), randn),
    "cos": (lambda x: x.cos(), randn),
    "tanh": (lambda x: x.tanh(), randn),
    "sigmoid": (lambda x: x.sigmoid(), randn),
    "neg": (lambda x: -x, randn),
    "pow2": (lambda x: x**2, randn),
    "pow3": (lambda x: x**3, randn),
    "pow_half": (lambda x: x**0.5, rand_pos),
    "pow_neg": (lambda x: x**-1.5, rand_pos),
    "rpow": (lambda x: 2.0**x, randn),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), randn),
    "clamp_min": (lambda x: x.clamp(min=0.1), randn),
    "clamp_max": (lambda x: x.clamp(max=0.1), randn),
    "scalar_ops": (lambda x: (3 - x) * 2 / (x * x + 1) + 1.5, randn),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_parity(name):
    fn, make = UNARY[name]
    check(fn, [make(3, 4, seed=7)])
    check(fn, [make(seed=8)])  # 0-d


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name):
    fn, make = UNARY[name]
    gradcheck(fn, [make(2, 3, seed=9)])


def test_tensor_pow_tensor():
    check(lambda x, y: x**y, [rand_pos(3, 4, seed=1), randn(4, seed=2)])
    gradcheck(lambda x, y: x**y, [rand_pos(3, 4, seed=1), randn(4, seed=2)])


def test_sigmoid_and_exp_at_large_magnitudes():
    big = np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4])
    check(lambda x: x.sigmoid(), [big])
    check(lambda x: x.tanh(), [big])


def test_where_and_masked_fill_with_inf_masks():
    a, b = randn(3, 4, seed=1), randn(4, seed=2)
    mask = np.random.default_rng(0).random((3, 4)) > 0.5
    check(lambda x, y: na.where(na.tensor(mask), x, y), [a, b],
          torch_fn=lambda x, y: torch.where(torch.tensor(mask), x, y))
    check(lambda x: x.masked_fill(na.tensor(mask), float("-inf")).exp(), [a],
          torch_fn=lambda x: x.masked_fill(torch.tensor(mask), float("-inf")).exp())
    gradcheck(lambda x, y: na.where(na.tensor(mask), x, y), [a, b])


def test_zero_gradient_ops_match_torch():
    x = randn(3, 4, seed=3) * 3
    for name in ["sign", "floor", "ceil", "round", "trunc"]:
        check(lambda t, n=name: getattr(t, n)(), [x], torch_fn=lambda t, n=name: getattr(torch, n)(t))


def test_comparisons_and_logic_have_no_grad():
    a, b = randn(3, 4, seed=1), randn(3, 4, seed=2)
    x, y = na.tensor(a, requires_grad=True), na.tensor(b)
    for name in ["eq", "ne", "lt", "le", "gt", "ge"]:
        out = getattr(x, name)(y)
        ref = getattr(torch.tensor(a), name)(torch.tensor(b))
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    m, n = x > 0, y > 0
    np.testing.assert_array_equal((m & n).numpy(), (a > 0) & (b > 0))
    np.testing.assert_array_equal((m | n).numpy(), (a > 0) | (b > 0))
    np.testing.assert_array_equal((~m).numpy(), ~(a > 0))
    np.testing.assert_array_equal(na.logical_xor(m, n).numpy(), (a > 0) ^ (b > 0))
    np.testing.assert_array_equal(x.isfinite().numpy(), np.isfinite(a))


@pytest.mark.parametrize(
    "a_dtype,b,expected",
    [
        (np.float32, 2.0, "float32"),
        (np.float32, 2, "float32"),
        (np.int64, 2.5, "float32"),
        (np.int32, 2, "int32"),
        (np.float16, 1.0, "float16"),
        (np.bool_, 1, "int64"),
    ],
)
def test_python_scalars_promote_like_torch(a_dtype, b, expected):
    x = na.tensor(np.ones(3, dtype=a_dtype))
    assert str((x * b).dtype) == expected
    assert str((x * b).dtype) == str((torch.tensor(np.ones(3, dtype=a_dtype)) * b).dtype).removeprefix("torch.")


@pytest.mark.parametrize(
    "da,db,shape_b",
    [(np.float32, np.float64, (3,)), (np.float32, np.float64, ()), (np.int64, np.float32, (3,)),
     (np.int32, np.int64, (3,)), (np.int64, np.float64, ()), (np.float16, np.float32, ())],
)
def test_tensor_promotion_like_torch(da, db, shape_b):
    a, b = np.ones(3, dtype=da), np.ones(shape_b, dtype=db)
    ours = (na.tensor(a) + na.tensor(b)).dtype
    ref = (torch.tensor(a) + torch.tensor(b)).dtype
    assert str(ours) == str(ref).removeprefix("torch.")


def test_mixed_dtype_gradient_flows_back_in_each_dtype():
    x = na.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = na.tensor(np.full(3, 2.0), requires_grad=True)  # float64
    (x * y).sum().backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_int_division_and_floor_division():
    a = na.tensor([7, -7, 8])
    np.testing.assert_allclose((a / 2).numpy(), [3.5, -3.5, 4.0])
    np.testing.assert_array_equal((a // 2).numpy(), [3, -4, 4])
    np.testing.assert_array_equal(na.div(a, 2, rounding_mode="trunc").numpy(), [3, -3, 4])
    np.testing.assert_array_equal((a % 3).numpy(), torch.tensor([7, -7, 8]).remainder(3).numpy())
