"""torch's in-place and new_* Tensor methods (ops/inplace.py) against torch's, float64 and float32;
allowed under no_grad on parameters, refused with a clear error when they would break a gradient."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.errors import DTypeError, GradientError

CASES = [
    ("add_", lambda o: (o * 0.5,), {"alpha": -2.0}), ("sub_", lambda o: (o,), {"alpha": 0.5}),
    ("mul_", lambda o: (o,), {}), ("div_", lambda o: (o.abs() + 1,), {}), ("add_", lambda o: (3.0,), {}),
    ("clamp_", lambda o: (), {"min": -0.5, "max": 0.3}), ("zero_", lambda o: (), {}), ("fill_", lambda o: (2.5,), {}),
    ("copy_", lambda o: (o[:1],), {}), ("masked_fill_", lambda o: (o > 0, -1.0), {}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,args,kwargs", CASES, ids=[c[0] for c in CASES])
def test_inplace_matches_torch(name, args, kwargs, dtype):
    rng = np.random.default_rng(0)
    x, other = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
    ours, ref = na.tensor(x.copy()), torch.tensor(x.copy())
    o_other, t_other = na.tensor(other), torch.tensor(other)
    out_o = getattr(ours, name)(*args(o_other), **kwargs)
    out_t = getattr(ref, name)(*args(t_other), **kwargs)
    assert out_o is ours and out_t is ref
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("name,size", [("new_zeros", (2, 3)), ("new_ones", (4,)), ("new_empty", (0, 2))])
def test_new_methods_match_torch(name, size):
    for dtype in (np.float32, np.float64):
        t_dtype = getattr(torch, str(np.dtype(dtype)))
        o, t = getattr(na.zeros(1, dtype=dtype), name)(*size), getattr(torch.zeros(1, dtype=t_dtype), name)(*size)
        assert o.shape == tuple(t.shape) and str(o.dtype) == str(t.dtype).replace("torch.", "")
        if name != "new_empty":
            np.testing.assert_array_equal(o.numpy(), t.numpy())
    assert na.zeros(1).new_zeros((2, 3)).shape == (2, 3)
    full = na.zeros(1, dtype=np.float64).new_full((2,), 7)
    assert full.dtype == np.float64 and full.numpy().tolist() == [7.0, 7.0]
    assert na.zeros(1).new_tensor([1, 2]).dtype == np.float32
    assert na.zeros(1).new_zeros(2, dtype=na.int64).dtype == np.int64


def test_random_fills_stay_in_range_and_follow_the_seed():
    a = na.zeros(1000).uniform_(-2.0, 3.0)
    assert -2.0 <= a.numpy().min() and a.numpy().max() < 3.0 and abs(a.numpy().mean() - 0.5) < 0.2
    na.manual_seed(3)
    b = na.zeros(2000).normal_(1.0, 0.5)
    assert abs(b.numpy().mean() - 1.0) < 0.05 and abs(b.numpy().std() - 0.5) < 0.05
    na.manual_seed(3)
    np.testing.assert_array_equal(na.zeros(2000).normal_(1.0, 0.5).numpy(), b.numpy())


def test_manual_sgd_step_under_no_grad_and_errors():
    p = na.nn.Parameter(na.tensor([1.0, 2.0]))
    p.grad = na.tensor([0.5, -1.0])
    with na.no_grad():
        p.add_(p.grad, alpha=-0.1)
    np.testing.assert_allclose(p.detach().numpy(), [0.95, 2.1], rtol=1e-6)
    with pytest.raises(GradientError, match="no_grad"):
        p.mul_(2.0)
    with pytest.raises(DTypeError, match="cannot be stored"):
        na.tensor([1, 2]).add_(0.5)
