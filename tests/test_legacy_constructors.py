"""torch's legacy typed constructors (na.FloatTensor, LongTensor, ...) against torch's."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.errors import DTypeError

NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor", "ShortTensor",
         "CharTensor", "ByteTensor", "BoolTensor"]


@pytest.mark.parametrize("name", NAMES)
def test_constructor_matches_torch(name):
    ours, ref = getattr(na, name), getattr(torch, name)
    for args in [([1, 0, 3],), ([[1.5, 2.0], [0.0, 4.0]],), ((2, 3),), ()]:
        o, t = ours(*args), ref(*args)
        assert o.shape == tuple(t.shape), (name, args)
        assert str(o.dtype) == str(t.dtype).replace("torch.", "").replace("bool", "bool"), (name, args)
        np.testing.assert_array_equal(o.numpy().astype(np.float64), t.float().numpy().astype(np.float64))
    sized = ours(2, 3)
    assert sized.shape == (2, 3) and tuple(ref(2, 3).shape) == (2, 3)
    assert isinstance(sized, ours) and not isinstance(na.zeros(2, dtype=np.complex64), ours)
    converted = ours(na.tensor([1.0, 2.0]))
    assert isinstance(converted, ours) and isinstance(converted, na.Tensor)


def test_isinstance_and_errors():
    assert isinstance(na.randn(2), na.FloatTensor) and not isinstance(na.randn(2), na.DoubleTensor)
    assert isinstance(na.tensor([1, 2]), na.LongTensor)
    with pytest.raises(DTypeError, match="sizes"):
        na.FloatTensor([1.0], 2)
