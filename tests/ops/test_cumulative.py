"""cumprod, logcumsumexp, diff, trapezoid, cumulative_trapezoid vs torch and gradcheck."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na

WITH_ZEROS = np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 0.0, 3.0, 0.5], [2.0, -0.5, 1.0, 4.0]])
CASES = [
    ("cumprod", lambda m, x: m.cumprod(x, 1), randn(3, 4, seed=1)),
    ("cumprod_dim0", lambda m, x: x.cumprod(0), randn(3, 4, seed=1)),
    ("cumprod_zeros", lambda m, x: m.cumprod(x, 1), WITH_ZEROS),
    ("cumprod_zeros_dim0", lambda m, x: m.cumprod(x, 0), WITH_ZEROS),
    ("logcumsumexp", lambda m, x: m.logcumsumexp(x, 1), randn(3, 4, seed=1)),
    ("logcumsumexp_large", lambda m, x: x.logcumsumexp(0), randn(3, 4, seed=1) * 400),
    ("diff", lambda m, x: m.diff(x), randn(3, 4, seed=1)),
    ("diff_n2_dim0", lambda m, x: m.diff(x, n=2, dim=0), randn(3, 4, seed=1)),
    ("diff_prepend", lambda m, x: m.diff(x, dim=1, prepend=x[:, :1], append=x[:, -2:]), randn(3, 4, seed=1)),
    ("trapezoid", lambda m, x: m.trapezoid(x), randn(3, 4, seed=1)),
    ("trapezoid_dx", lambda m, x: m.trapezoid(x, dx=0.5, dim=0), randn(3, 4, seed=1)),
    ("trapezoid_x", lambda m, x: m.trapezoid(x, m.tensor([0.0, 1.0, 3.0, 4.5], dtype=x.dtype)), randn(3, 4, seed=1)),
    ("cumulative_trapezoid", lambda m, x: m.cumulative_trapezoid(x), randn(3, 4, seed=1)),
    ("trapz", lambda m, x: m.trapz(x, dim=0), randn(3, 4, seed=1)),
]


@pytest.mark.parametrize("name,fn,x", CASES, ids=[c[0] for c in CASES])
def test_cumulative(name, fn, x):
    check(lambda a: fn(na, a), [x], torch_fn=lambda a: fn(torch, a), rtol=1e-8 if "large" in name else None)
    gradcheck(lambda a: fn(na, a), [x])


def test_zero_d_and_bool_diff():
    check(lambda a: na.cumprod(a, 0), [np.array(2.0)], torch_fn=lambda a: torch.cumprod(a, 0))
    check(lambda a: na.diff(a), [np.array([True, False, False, True])], torch_fn=torch.diff, grad=False)
