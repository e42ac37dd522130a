"""Dropout: scaling, statistics, seeding, masks per channel, gradients, p edge cases, errors.
(The random stream is ours, not torch's, so parity is on the rule, not the draws.)"""

import numpy as np
import pytest
from parity import gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, ShapeError


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_scaling_and_drop_rate(p):
    x = na.ones(200_00, requires_grad=True)
    y = F.dropout(x, p)
    out = y.detach().numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert abs((~kept).mean() - p) < 0.02
    assert y.dtype == np.float32
    y.backward(na.full((200_00,), 2.0))
    np.testing.assert_allclose(x.grad.numpy(), 2 * out, rtol=1e-6)  # dy/dx = mask / (1 - p)


def test_seeded_by_default_generator_and_by_generator_kwarg():
    x = na.randn(50, 40)
    na.manual_seed(3)
    a = F.dropout(x, 0.3).numpy()
    na.manual_seed(3)
    b = F.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(a, b)
    c = F.dropout(x, 0.3, generator=na.Generator(7)).numpy()
    d = F.dropout(x, 0.3, generator=na.Generator(7)).numpy()
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(a, c)


def test_eval_p0_and_p1():
    x = na.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    assert np.all(y.detach().numpy() == 0) and np.isfinite(y.detach().numpy()).all()
    y.sum().backward()
    assert np.all(x.grad.numpy() == 0)


@pytest.mark.parametrize("fn,shape,lead", [(F.dropout2d, (4, 6, 3, 3), 2), (F.dropout2d, (4, 6, 5), 2),
                                           (F.dropout1d, (4, 6, 5), 2), (F.dropout1d, (6, 5), 1),
                                           (F.dropout3d, (2, 6, 2, 2, 2), 2)])
def test_channel_dropout_zeroes_whole_channels(fn, shape, lead):
    x = na.ones(*shape)
    y = fn(x, 0.5).numpy()
    per_channel = y.reshape(shape[:lead] + (-1,))
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel == 0).all(-1).sum() < per_channel.shape[0] * (per_channel.shape[1] if lead == 2 else 1)


def test_gradcheck_with_fixed_mask():
    x = randn(3, 4)

    def fn(t):
        return F.dropout(t, 0.4, generator=na.Generator(1))  # same mask on every call

    gradcheck(fn, [x])
    gradcheck(lambda t: F.dropout2d(t, 0.4, generator=na.Generator(2)), [randn(2, 3, 2, 2)])


def test_float64_stays_float64():
    y = F.dropout(na.tensor(randn(3, 3)), 0.5)
    assert y.dtype == np.float64


def test_errors():
    x = na.randn(3, 4)
    for p in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="probability"):
            F.dropout(x, p)
        with pytest.raises(ConfigError, match="probability"):
            F.dropout2d(na.randn(2, 3, 4, 4), p)
    with pytest.raises(ShapeError):
        F.dropout2d(na.randn(3), 0.5)
    with pytest.raises(DTypeError):
        F.dropout(na.tensor(np.array([1, 2])), 0.5)
