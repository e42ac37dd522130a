"""linear and bilinear: parity with torch, gradcheck, errors."""

import numpy as np
import pytest
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ShapeError


@pytest.mark.parametrize("xshape", [(5,), (4, 5), (2, 3, 5), (2, 0, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(xshape, bias):
    inputs = [randn(*xshape, seed=1), randn(3, 5, seed=2)] + ([randn(3, seed=3)] if bias else [])
    check(F.linear, inputs, torch_fn=TF.linear)
    if 0 not in xshape:
        gradcheck(F.linear, inputs)


def test_linear_1d_weight():
    check(F.linear, [randn(4, 5, seed=1), randn(5, seed=2)], torch_fn=TF.linear)


def test_linear_noncontiguous():
    check(F.linear, [randn(4, 5, seed=1), randn(3, 5, seed=2), randn(3, seed=3)], torch_fn=TF.linear, noncontig=True)


def test_bilinear():
    inputs = [randn(4, 3, seed=1), randn(4, 5, seed=2), randn(2, 3, 5, seed=3), randn(2, seed=4)]
    check(F.bilinear, inputs, torch_fn=TF.bilinear)
    gradcheck(F.bilinear, inputs)


def test_errors():
    with pytest.raises(ShapeError, match="in_features=6"):
        F.linear(na.randn(4, 5), na.randn(3, 6))
    with pytest.raises(ShapeError, match="bias"):
        F.linear(na.randn(4, 5), na.randn(3, 5), na.randn(4))
    with pytest.raises(ShapeError):
        F.linear(na.randn(4, 5), na.randn(2, 3, 5))
    with pytest.raises(ShapeError):
        F.bilinear(na.randn(4, 3), na.randn(4, 5), na.randn(2, 5, 3))
