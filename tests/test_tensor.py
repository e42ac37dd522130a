"""Tensor: attributes, conversions, Python protocol, in-place operators and a torch-like repr."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.errors import DeviceError, DTypeError, GradientError, ShapeError


def test_shape_size_dim_numel_dtype_device():
    x = na.randn(2, 3)
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.dim() == 2 == x.ndim and x.numel() == 6 and len(x) == 2
    assert x.dtype == na.float32 and x.device == "cpu" and str(x.device) == "cpu"
    assert repr(x.device) == repr(torch.device("cpu"))
    assert x.is_floating_point() and not x.is_cuda and x.element_size() == 4
    assert x.stride() == tuple(torch.randn(2, 3).stride()) and x.T.stride() == tuple(torch.randn(2, 3).T.stride())


def test_numpy_item_tolist():
    x = na.tensor([[1.5, 2.0]])
    assert isinstance(x.numpy(), np.ndarray) and np.shares_memory(x.numpy(), x.data)
    assert na.tensor(2.5).item() == 2.5 and type(na.tensor(3).item()) is int and type(na.tensor(True).item()) is bool
    assert x.tolist() == [[1.5, 2.0]] and na.tensor(1.0).tolist() == 1.0
    assert float(na.tensor([2.0])) == 2.0 and int(na.tensor(3)) == 3
    assert [1, 2, 3][na.tensor(1)] == 2  # __index__
    with pytest.raises(GradientError, match=r"\.detach\(\)\.numpy\(\)"):
        na.ones(2, requires_grad=True).numpy()
    with pytest.raises(ShapeError, match=r"item\(\): only a one-element tensor .* got shape \(1, 2\)"):
        x.item()
    with pytest.raises(ShapeError, match="ambiguous"):
        bool(x)
    assert bool(na.tensor([1.0])) and not bool(na.tensor(0))


def test_to_dtype_device_and_other_tensor():
    x = na.randn(2, 3)
    assert x.to("cpu") is x and x.to(na.float32) is x
    assert x.to("float64").dtype == np.float64 and x.to(dtype=na.float16).dtype == np.float16
    assert x.double().dtype == np.float64 and x.half().dtype == np.float16 and x.long().dtype == np.int64
    assert x.int().dtype == np.int32 and x.bool().dtype == np.bool_ and x.bfloat16().dtype == na.bfloat16
    assert x.to(na.zeros(1, dtype="float64")).dtype == np.float64
    assert x.to("cpu", na.float64).dtype == np.float64
    a = na.ones(2, requires_grad=True)
    a.to("float64").sum().backward()  # differentiable, gradient back in the leaf's dtype
    assert a.grad.dtype == np.float32 and a.grad.tolist() == [1.0, 1.0]


def test_cuda_without_cupy_raises_device_error_with_install_hint():
    if na.cuda_is_available():
        pytest.skip("a GPU is present")
    for make in (lambda: na.ones(2, device="cuda"), lambda: na.ones(2).to("cuda"), lambda: na.ones(2).cuda(),
                 lambda: na.tensor([1.0], device="cuda:0")):
        with pytest.raises(DeviceError, match=r"pip install cupy-cuda12x"):
            make()


def test_detach_clone_contiguous_requires_grad_():
    x = na.randn(3, 4, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and np.shares_memory(d.data, x.data)
    c = x.clone()
    assert c.requires_grad and not np.shares_memory(c.data, x.data)
    t = x.T
    assert not t.is_contiguous() and t.contiguous().is_contiguous()
    y = na.randn(2)
    assert y.contiguous() is y
    assert y.requires_grad_() is y and y.requires_grad


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@"])
def test_python_operators_with_broadcasting_and_reflection(op):
    a, b = np.abs(np.random.default_rng(0).standard_normal((3, 4))) + 0.5, np.arange(1.0, 5.0)
    if op == "@":
        b = np.arange(1.0, 9.0).reshape(4, 2)
    f = eval(f"lambda x, y: x {op} y")  # noqa: S307 - fixed operator strings
    ours, ref = f(na.tensor(a), na.tensor(b)), f(torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(ours.numpy(), ref.numpy())
    if op != "@":
        np.testing.assert_allclose(f(2.0, na.tensor(a)).numpy(), f(2.0, torch.tensor(a)).numpy())
        np.testing.assert_allclose(f(na.tensor(a), 3).numpy(), f(torch.tensor(a), 3).numpy())


def test_in_place_operators():
    x = na.ones(3)
    x += 1
    x *= na.tensor([1.0, 2.0, 3.0])
    x -= 1
    x /= 2
    assert x.tolist() == [0.5, 1.5, 2.5]
    i = na.ones(3, dtype="int64")
    with pytest.raises(DTypeError, match="in-place add: the result is float32 and cannot be stored"):
        i += 1.5
    with pytest.raises(ShapeError, match="in-place add"):
        x += na.ones(2, 3)
    w = na.ones(2, requires_grad=True)
    with pytest.raises(GradientError, match="in-place"):
        w += 1


def test_iteration_and_len():
    x = na.arange(6).reshape(2, 3)
    assert [r.tolist() for r in x] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(TypeError):
        len(na.tensor(1.0))


def _torch_str(t):
    return str(t).replace("torch.", "").replace("Backward0", "Backward")


@pytest.mark.parametrize("data", [
    [1.0, 2.5], [[1, 2], [3, 4]], 3.0, 5, [1e-5, 1.0], [1.0, 100000.0], [0.5, 1000.5], [123456.789, 1.0],
    [float("nan"), float("inf"), 1.5], [float("-inf"), 2.0], [-0.0, 1.0], [0.0, 0.0], [-1.0, 2.5], [1e10, 1.0],
    [True, False], [1, 100, -5], np.arange(24.0).reshape(2, 3, 4) / 7, np.arange(30.0) / 3,
])
def test_repr_matches_torch(data):
    assert repr(na.tensor(data)) == _torch_str(torch.tensor(data))


@pytest.mark.parametrize("make", [
    lambda m: m.zeros(0), lambda m: m.zeros(2, 0), lambda m: m.zeros(0, dtype=m.int64),
    lambda m: m.ones(2, dtype=m.bfloat16), lambda m: m.ones(2, dtype=m.float16), lambda m: m.ones(2, dtype=m.float64),
    lambda m: m.ones(2, dtype=m.int32), lambda m: m.ones(2, requires_grad=True),
    lambda m: m.ones(2, requires_grad=True) * 2,
])
def test_repr_suffixes_match_torch(make):
    assert repr(make(na)) == _torch_str(make(torch))
