"""gradcheck itself: it passes correct gradients and catches wrong ones (a checker that cannot fail is useless)."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch.errors import DTypeError, GradientError


class WrongSquare(na.Function):
    """y = x^2 with a deliberately wrong backward (3x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x


def _x(*shape):
    return na.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("fast", [False, True])
def test_gradcheck_passes_correct_and_catches_wrong_gradients(fast):
    assert na.gradcheck(lambda x: (x * x).sum(1), [_x(3, 4)], fast_mode=fast)
    with pytest.raises(GradientError, match="gradcheck failed"):
        na.gradcheck(lambda x: WrongSquare.apply(x), [_x(3, 4)], fast_mode=fast)
    assert not na.gradcheck(lambda x: WrongSquare.apply(x), [_x(3, 4)], fast_mode=fast, raise_exception=False)


def test_gradcheck_multiple_inputs_and_outputs():
    a, b = _x(2, 3), _x(3)
    assert na.gradcheck(lambda x, y: (x * y, (x - y).exp()), [a, b])
    c = na.tensor(np.ones(3))  # inputs without requires_grad are not checked
    assert na.gradcheck(lambda x, y: x * y, [a, c])


def test_gradcheck_requires_float64_and_a_grad_input():
    with pytest.raises(DTypeError, match="float64"):
        na.gradcheck(lambda x: x * 2, [na.ones(2, requires_grad=True)])
    with pytest.raises(GradientError, match="no input has requires_grad"):
        na.gradcheck(lambda x: x * 2, [na.ones(2, dtype="float64")])


def test_gradcheck_restores_inputs():
    x = _x(4)
    before = x.numpy().copy() if not x.requires_grad else x.detach().numpy().copy()
    na.gradcheck(lambda t: t.sin(), [x])
    na.gradcheck(lambda t: t.sin(), [x], fast_mode=True)
    np.testing.assert_array_equal(x.detach().numpy(), before)


def test_gradcheck_on_non_contiguous_inputs():
    base = np.random.default_rng(1).standard_normal((4, 3))
    x = na.Tensor(base.T, requires_grad=True)  # a transposed (Fortran-ordered) view
    assert not x.is_contiguous()
    assert na.gradcheck(lambda t: (t * t).cumsum(1), [x])
    np.testing.assert_array_equal(x.detach().numpy(), base.T)
