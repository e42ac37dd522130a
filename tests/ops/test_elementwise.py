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


# -- edge cases: empty dims, non-contiguous inputs, large magnitudes, special points ----------------------
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_empty_and_noncontiguous(name):
    fn, make = UNARY[name]
    check(fn, [make(0, 3, seed=1)])
    check(fn, [make(4, 5, seed=2)], noncontig=True)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_scalars_both_ways(name):
    fn = BINARY[name]
    if name not in ("maximum", "minimum"):  # those take tensors only, in torch too
        check(lambda x: fn(x, 1.5), [randn(3, seed=1)])
        check(lambda x: fn(1.5, x), [rand_pos(3, seed=1)])
    check(fn, [randn(seed=1), rand_pos(seed=2)])  # two 0-d tensors
    check(fn, [randn(3, seed=1), rand_pos(seed=2)])  # 0-d next to a 1-d tensor
    check(lambda x, y: fn(x.T, y), [randn(4, 3, seed=3), rand_pos(3, 4, seed=4)])  # non-contiguous view


@settings(max_examples=20, deadline=None)
@given(mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
def test_where_maximum_broadcasting_hypothesis(shapes):
    sc, sa, sb = shapes.input_shapes
    cond = np.random.default_rng(1).random(sc) > 0.5
    fn_na = lambda x, y: na.where(na.tensor(cond), x, y).maximum(y)  # noqa: E731
    fn_t = lambda x, y: torch.where(torch.tensor(cond), x, y).maximum(y)  # noqa: E731
    check(fn_na, [randn(*sa, seed=2), randn(*sb, seed=3)], torch_fn=fn_t)


@pytest.mark.parametrize("name,values", [
    ("exp", [-1000.0, -50.0, 0.0, 50.0, 80.0]),
    ("log", [1e-300, 1e-10, 1.0, 1e10, 1e300]),
    ("log1p", [-0.999999, -1e-12, 0.0, 1e-12, 1e12]),
    ("expm1", [-50.0, -1e-10, 0.0, 1e-10, 50.0]),
    ("sqrt", [1e-300, 1e-10, 1.0, 1e300]),
    ("rsqrt", [1e-300, 1e-10, 1.0, 1e300]),
    ("tanh", [-1e4, -20.0, 0.0, 20.0, 1e4]),
    ("sin", [-1e6, 0.0, 1e6]),
])
def test_unary_large_magnitudes(name, values):
    a = np.array(values)
    with np.errstate(over="ignore", under="ignore"):
        check(lambda x: getattr(x, name)(), [a], dtypes=(np.float64,))


def test_special_points_match_torch():
    zero_and_more = np.array([0.0, 0.0, 1.5, -2.0])
    check(lambda x: x.abs(), [zero_and_more])  # d|x|/dx = 0 at 0
    check(lambda x: x.clamp(0.0, 1.5), [zero_and_more])  # boundaries belong to the inside
    check(lambda x: x.clamp(1.0, 0.5), [zero_and_more])  # min > max: everything is max, no gradient
    check(lambda x: x.maximum(na.zeros(4, dtype=x.dtype)) if isinstance(x, na.Tensor)
          else x.maximum(torch.zeros(4, dtype=x.dtype)), [zero_and_more])
    check(lambda x: x**0, [zero_and_more])
    check(lambda x, y: x**y, [np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.0])])  # 0^0, 0^2, 2^0
    with np.errstate(invalid="ignore", divide="ignore"):
        check(lambda x: x**0.5, [np.array([-1.0, 0.0, 4.0])])  # nan and inf where torch has them


def test_clamp_with_tensor_bounds():
    lo, hi = randn(4, seed=1) - 1, randn(3, 1, seed=2) + 1
    check(lambda x, a, b: x.clamp(a, b), [randn(3, 4, seed=3), lo, hi])
    gradcheck(lambda x, a, b: x.clamp(a, b), [randn(3, 4, seed=3), lo, hi])


def test_comparisons_broadcast_like_torch():
    a, b = randn(3, 1, seed=1), randn(4, seed=2)
    for name in ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]:
        ours = getattr(na, name)(na.tensor(a) > 0, na.tensor(b) > 0) if name.startswith("logical") \
            else getattr(na, name)(na.tensor(a), na.tensor(b))
        ref = getattr(torch, name)(torch.tensor(a) > 0, torch.tensor(b) > 0) if name.startswith("logical") \
            else getattr(torch, name)(torch.tensor(a), torch.tensor(b))
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    np.testing.assert_array_equal((na.tensor(a) < 0.5).numpy(), (torch.tensor(a) < 0.5).numpy())
    assert na.equal(na.tensor(a), na.tensor(a)) and not na.equal(na.tensor(a), na.tensor(b))
    assert na.allclose(na.tensor(a), na.tensor(a) + 1e-9)


def test_isnan_isinf_isfinite():
    a = np.array([1.0, np.nan, np.inf, -np.inf])
    for name in ["isnan", "isinf", "isfinite"]:
        np.testing.assert_array_equal(getattr(na, name)(na.tensor(a)).numpy(), getattr(torch, name)(torch.tensor(a)).numpy())


def test_add_sub_alpha_and_rsub_rdiv():
    check(lambda x, y: na.add(x, y, alpha=2.5), [randn(3, seed=1), randn(3, seed=2)],
          torch_fn=lambda x, y: torch.add(x, y, alpha=2.5))
    check(lambda x, y: na.sub(x, y, alpha=-0.5), [randn(3, seed=1), randn(3, seed=2)],
          torch_fn=lambda x, y: torch.sub(x, y, alpha=-0.5))
    check(lambda x: 1.0 / x - 2.0, [rand_pos(3, seed=3)])


def test_unary_of_integer_tensors_gives_default_float_like_torch():
    i = np.array([1, 2, 3])
    for name in ["exp", "log", "sqrt", "sin", "sigmoid", "tanh"]:
        ours, ref = getattr(na, name)(na.tensor(i)), getattr(torch, name)(torch.tensor(i))
        assert str(ours.dtype) == str(ref.dtype).removeprefix("torch.")
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)
    assert str(na.tensor(i).abs().dtype) == "int64" and str((na.tensor(i) ** 2).dtype) == "int64"
