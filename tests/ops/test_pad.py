"""F.pad in every mode (constant, reflect, replicate, circular) vs torch, gradcheck, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ShapeError

# (input shape, pad) combinations torch accepts in every non-constant mode
CASES = [
    ((2, 3, 6), (1, 2)),
    ((2, 3, 6), (0, 3)),
    ((3, 6), (2, 1)),  # unbatched 1-d
    ((2, 3, 5, 6), (1, 2, 2, 1)),
    ((2, 3, 5, 6), (0, 0, 3, 4)),
    ((3, 5, 6), (2, 0, 1, 1)),  # unbatched 2-d
    ((1, 2, 4, 5, 6), (1, 1, 2, 0, 3, 2)),
]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("xs,pad", CASES)
def test_pad_modes_parity(xs, pad, mode):
    check(lambda x: F.pad(x, pad, mode=mode), [randn(*xs, seed=1)], torch_fn=lambda x: TF.pad(x, pad, mode=mode))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_modes_gradcheck(mode):
    gradcheck(lambda x: F.pad(x, (2, 1, 1, 3), mode=mode), [randn(1, 2, 4, 5, seed=2)])
    gradcheck(lambda x: F.pad(x, (3, 3), mode=mode), [randn(1, 2, 4, seed=3)])


@pytest.mark.parametrize(
    "xs,pad,value",
    [((2, 3), (1, 2), 0.0), ((2, 3, 4), (1, 0, 2, 2), 1.5), ((2, 3, 4), (1, 1, 1, 1, 1, 1), -2.0),
     ((2, 3, 4), (-1, 2), 0.0), ((2, 3, 5), (-1, -2, 1, 0), 3.0), ((4,), (0, 0), 0.0)],
)
def test_constant_pad_parity(xs, pad, value):
    check(lambda x: F.pad(x, pad, value=value), [randn(*xs, seed=1)], torch_fn=lambda x: TF.pad(x, pad, value=value))
    gradcheck(lambda x: F.pad(x, pad, value=value), [randn(*xs, seed=1)])


@pytest.mark.parametrize("pad", [(-1, 2), (2, -1), (-2, -1), (-1, 2, 1, -2)])
def test_circular_pad_with_negative_crop(pad):
    # torch crops first, then wraps around what is left
    xs = (2, 3, 6) if len(pad) == 2 else (2, 3, 5, 6)
    check(lambda x: F.pad(x, pad, mode="circular"), [randn(*xs, seed=1)],
          torch_fn=lambda x: TF.pad(x, pad, mode="circular"))


def test_reflect_pad_up_to_size_minus_one():
    check(lambda x: F.pad(x, (4, 4), mode="reflect"), [randn(1, 2, 5, seed=1)],
          torch_fn=lambda x: TF.pad(x, (4, 4), mode="reflect"))


def test_pad_keeps_dtype_and_composes_with_conv():
    x = randn(2, 3, 6, 6, seed=1)
    w = randn(4, 3, 3, 3, seed=2)
    check(lambda a, b: F.conv2d(F.pad(a, (1, 1, 1, 1), mode="reflect"), b), [x, w],
          torch_fn=lambda a, b: TF.conv2d(TF.pad(a, (1, 1, 1, 1), mode="reflect"), b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: F.pad(x, (5, 0), mode="reflect"),  # reflect pad must be < dim size (5)
        lambda x: F.pad(x, (6, 0), mode="circular"),  # circular pad must be <= dim size
        lambda x: F.pad(x, (1, 2, 3)),  # odd length
        lambda x: F.pad(x, (1,) * 8),  # more pairs than dims
    ],
)
def test_pad_errors(call):
    with pytest.raises(ShapeError):
        call(na.tensor(np.ones((2, 3, 5), dtype=np.float32)))


def test_unknown_mode_is_a_value_error():
    with pytest.raises(ValueError, match="mode"):
        F.pad(na.tensor(np.ones((2, 3, 5))), (1, 1), mode="wrap")
