"""The pointwise math of ops/pointwise.py vs torch (forward, backward, float64/float32) and gradcheck."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, rand_pos, randn

import neural_arch as na

X = randn(3, 4, seed=1)
UNIT = np.random.default_rng(2).uniform(-0.9, 0.9, (3, 4))  # inside (-1, 1)
POS = rand_pos(3, 4, seed=3)
BIG = rand_pos(3, 4, seed=4, low=1.2, high=3.0)  # > 1 (acosh)
PROB = np.random.default_rng(5).uniform(0.1, 0.9, (3, 4))

UNARY = [
    ("tan", UNIT), ("asin", UNIT), ("acos", UNIT), ("atan", X), ("sinh", X), ("cosh", X), ("asinh", X),
    ("acosh", BIG), ("atanh", UNIT), ("log2", POS), ("log10", POS), ("exp2", X), ("reciprocal", POS),
    ("sinc", X), ("erf", X), ("erfc", X), ("erfinv", UNIT), ("lgamma", POS), ("digamma", POS), ("square", X),
    ("frac", X * 3), ("deg2rad", X), ("rad2deg", X), ("arcsin", UNIT), ("arccos", UNIT), ("arctan", X),
    ("arcsinh", X), ("arccosh", BIG), ("arctanh", UNIT), ("absolute", X), ("negative", X), ("fix", X * 3),
    ("positive", X), ("logit", PROB), ("nan_to_num", X),
]


@pytest.mark.parametrize("name,x", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, x):
    check(lambda a: getattr(na, name)(a), [x], torch_fn=lambda a: getattr(torch, name)(a))
    check(lambda a: getattr(a, name)(), [x])  # the Tensor method
    gradcheck(lambda a: getattr(na, name)(a), [x])


BINARY = [
    ("atan2", X, randn(4, seed=6)), ("arctan2", X, randn(3, 1, seed=6)), ("hypot", X, randn(4, seed=6)),
    ("logaddexp", X, randn(3, 1, seed=6)), ("logaddexp2", X, randn(4, seed=6)), ("xlogy", X, POS),
    ("fmod", X * 3, rand_pos(4, seed=7)), ("remainder", X * 3, rand_pos(4, seed=7)),
    ("fmax", X, randn(4, seed=6)), ("fmin", X, randn(4, seed=6)), ("copysign", X, randn(4, seed=6)),
    ("float_power", POS, randn(4, seed=6)), ("multiply", X, X.T.copy().T), ("divide", X, POS),
    ("true_divide", X, POS), ("subtract", X, randn(4, seed=6)), ("floor_divide", X * 3, rand_pos(4, seed=7)),
]


@pytest.mark.parametrize("name,a,b", BINARY, ids=[u[0] for u in BINARY])
def test_binary(name, a, b):
    # torch has no derivative for floor_divide
    check(lambda x, y: getattr(na, name)(x, y), [a, b], torch_fn=lambda x, y: getattr(torch, name)(x, y),
          grad=name != "floor_divide")
    if name != "floor_divide":
        gradcheck(lambda x, y: getattr(na, name)(x, y), [a, b])


def test_xlogy_zero_and_special_values():
    x = np.array([0.0, 0.0, 1.0, 2.0])
    y = np.array([0.0, 2.0, 3.0, 0.5])
    check(lambda a, b: na.xlogy(a, b), [x, y], torch_fn=torch.xlogy)
    check(lambda a: na.nan_to_num(a), [np.array([np.nan, np.inf, -np.inf, 1.0])], torch_fn=torch.nan_to_num)
    check(lambda a: na.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-2.0), [np.array([np.nan, np.inf, -np.inf, 1.0])],
          torch_fn=lambda a: torch.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-2.0))
    check(lambda a, b: na.logaddexp(a, b), [np.array([-np.inf, 1.0]), np.array([-np.inf, 2.0])],
          torch_fn=torch.logaddexp, grad=False)
    check(lambda a, b: na.fmax(a, b), [np.array([np.nan, 1.0, np.nan]), np.array([2.0, np.nan, np.nan])],
          torch_fn=torch.fmax, grad=False)


def test_lerp_polygamma_logit_eps_clamp_variants():
    w = np.random.default_rng(8).uniform(0, 1, (4,))
    check(lambda a, b, c: na.lerp(a, b, c), [X, randn(3, 4, seed=9), w], torch_fn=torch.lerp)
    check(lambda a, b: a.lerp(b, 0.3), [X, randn(3, 4, seed=9)])
    gradcheck(lambda a, b, c: na.lerp(a, b, c), [X, randn(3, 4, seed=9), w])
    for n in (1, 2):
        check(lambda a: na.polygamma(n, a), [POS], torch_fn=lambda a: torch.polygamma(n, a))
        gradcheck(lambda a: na.polygamma(n, a), [POS])
    check(lambda a: na.logit(a, eps=0.2), [PROB], torch_fn=lambda a: torch.logit(a, eps=0.2))
    check(lambda a: na.clamp_min(a, 0.1), [X], torch_fn=lambda a: torch.clamp_min(a, 0.1))
    check(lambda a: a.clamp_max(0.1), [X])


def test_predicates():
    a = np.array([1.0, -np.inf, np.inf, np.nan, -0.0, 0.0])
    for name in ("isposinf", "isneginf", "signbit", "isreal"):
        check(lambda x: getattr(na, name)(x), [a], torch_fn=lambda x: getattr(torch, name)(x), grad=False)
    check(lambda x, y: na.isclose(x, y, rtol=0.1), [a, a * 1.05], torch_fn=lambda x, y: torch.isclose(x, y, rtol=0.1),
          grad=False)
    check(lambda x, y: na.heaviside(x, y), [a, np.full(6, 0.5)], torch_fn=torch.heaviside, grad=False)


def test_inplace_methods():
    x = na.tensor([0.5, -1.0, 2.0])
    t = torch.tensor([0.5, -1.0, 2.0])
    for name, args in (("abs_", ()), ("add_", (1.0,)), ("mul_", (2.0,)), ("clamp_", (0.0, 2.5)), ("sqrt_", ()),
                       ("lerp_", (na.ones(3), 0.5)), ("atan2_", (na.ones(3),))):
        targs = tuple(torch.ones(3) if isinstance(a, na.Tensor) else a for a in args)
        assert getattr(x, name)(*args) is x
        getattr(t, name)(*targs)
        np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-6)
    y = na.tensor([1.0], requires_grad=True)
    with pytest.raises(na.errors.GradientError, match="in-place"):
        y.exp_()
