"""Factories: values, shapes, dtypes and devices as torch gives them; seeded randomness."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.errors import DeviceError, DTypeError, ShapeError


def _same_dtype(ours, ref):
    assert str(ours.dtype) == str(ref.dtype).removeprefix("torch."), f"{ours.dtype} vs {ref.dtype}"


@pytest.mark.parametrize("data", [[1, 2, 3], [1.0, 2.5], [True, False], 3, 2.5, True, [[1, 2], [3, 4]],
                                  np.arange(3, dtype=np.int32), np.ones(2, dtype=np.float64),
                                  np.float64(1.5), np.int16(3), [], [[]]])
def test_tensor_infers_dtype_like_torch(data):
    ours, ref = na.tensor(data), torch.tensor(data)
    _same_dtype(ours, ref)
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def test_tensor_copies_numpy_but_from_numpy_and_as_tensor_share():
    a = np.zeros(3)
    t = na.tensor(a)
    a[0] = 1.0
    assert t.tolist() == [0.0, 0.0, 0.0]
    s = na.from_numpy(a)
    a[1] = 2.0
    assert s.tolist() == [1.0, 2.0, 0.0]
    assert na.as_tensor(a).numpy() is a


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_zeros_ones_empty(name):
    for args in [(2, 3), ((2, 3),), ([4],), ((),)]:
        ours, ref = getattr(na, name)(*args), getattr(torch, name)(*args)
        assert ours.shape == tuple(ref.shape)
        _same_dtype(ours, ref)
        if name != "empty":
            np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    assert getattr(na, name)(2, dtype="int32").dtype == np.int32
    assert getattr(na, name)(2, requires_grad=True).requires_grad


@pytest.mark.parametrize("fill", [1.5, 3, True])
def test_full_infers_dtype_from_fill_value(fill):
    ours, ref = na.full((2, 3), fill), torch.full((2, 3), fill)
    _same_dtype(ours, ref)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


@pytest.mark.parametrize("args", [(5,), (2, 7), (1, 2, 0.25), (0, 1, 0.1), (5, 0, -1), (0.5, 3), (-3, 3, 2)])
def test_arange_like_torch(args):
    ours, ref = na.arange(*args), torch.arange(*args)
    _same_dtype(ours, ref)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.0, 3.0, 1), (1, 0, 4), (0, 10, 0)])
def test_linspace_like_torch(args):
    ours, ref = na.linspace(*args), torch.linspace(*args)
    _same_dtype(ours, ref)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)


def test_eye_and_like_factories():
    np.testing.assert_array_equal(na.eye(3).numpy(), torch.eye(3).numpy())
    np.testing.assert_array_equal(na.eye(2, 4).numpy(), torch.eye(2, 4).numpy())
    x = na.ones(2, 3, dtype="int32")
    for name in ["zeros_like", "ones_like", "empty_like"]:
        y = getattr(na, name)(x)
        assert y.shape == (2, 3) and y.dtype == np.int32
    assert na.full_like(x, 7).tolist() == [[7, 7, 7], [7, 7, 7]]
    f = na.ones(4, dtype="float64")
    assert na.rand_like(f).dtype == np.float64 and na.randn_like(f).shape == (4,)
    assert na.zeros_like(f, dtype="float32").dtype == np.float32
    assert na.randint_like(x, 5).dtype == np.int32


def test_random_factories_ranges_dtypes_and_seeding():
    na.manual_seed(123)
    a = na.rand(1000)
    assert a.dtype == np.float32 and 0.0 <= a.numpy().min() and a.numpy().max() < 1.0
    b = na.randn(2000, dtype="float64")
    assert b.dtype == np.float64 and abs(b.numpy().mean()) < 0.1 and abs(b.numpy().std() - 1) < 0.1
    r = na.randint(3, 7, (500,))
    assert r.dtype == np.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert na.randint(5, (3,)).shape == (3,)
    assert na.randn(2, 3, dtype="float16").dtype == np.float16
    assert na.randn(3, requires_grad=True).requires_grad
    na.manual_seed(123)
    assert na.rand(1000).tolist() == a.tolist()
    p = na.randperm(10)
    assert sorted(p.tolist()) == list(range(10)) and p.dtype == np.int64


def test_generator_objects_are_independent_and_restorable():
    g1, g2 = na.Generator(7), na.Generator(7)
    assert na.randn(5, generator=g1).tolist() == na.randn(5, generator=g2).tolist()
    state = g1.get_state()
    x = na.rand(4, generator=g1).tolist()
    na.rand(10)  # the default generator does not disturb g1
    g1.set_state(state)
    assert na.rand(4, generator=g1).tolist() == x
    assert g1.initial_seed() == 7
    import json

    json.dumps(state)  # the state is JSON-serialisable (checkpoints store it)


def test_creation_errors():
    with pytest.raises(ShapeError, match="non-negative"):
        na.zeros(-1, 2)
    with pytest.raises(ShapeError, match="integers"):
        na.ones(2.5j)
    with pytest.raises(ShapeError, match="arange: step must be non-zero"):
        na.arange(0, 3, 0)
    with pytest.raises(ShapeError, match=r"randint: low \(5\) must be < high \(5\)"):
        na.randint(5, 5, (2,))
    with pytest.raises(DTypeError, match="unknown dtype 'float128x'"):
        na.zeros(2, dtype="float128x")
    with pytest.raises(DTypeError, match="cannot make a tensor from"):
        na.tensor(["a", "b"])
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        na.zeros(2, device="tpu")
