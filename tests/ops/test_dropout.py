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


# -- elementwise dropout's counter-based stream (SplitMix64) --------------------------------------------
def test_the_numpy_twin_draws_splitmix64():
    """SplitMix64 from seed 1234567 (the reference implementation's published first outputs): the twin's
    mask keeps exactly the elements whose top 24 bits are at or above the threshold."""
    from neural_arch.backend.kernels.dropout import scaled_keep_mask

    outputs = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
               16408922859458223821]
    for threshold in (0, 1 << 22, 1 << 23, 3 << 22, 1 << 24):
        mask = scaled_keep_mask((5,), np.uint64(1234567), np.uint64(threshold), 2.0, np.float32)
        np.testing.assert_array_equal(mask, [2.0 if z >> 40 >= threshold else 0.0 for z in outputs])


@pytest.mark.parametrize("shape", [(7,), (37, 29), (3, 5, 64)])
def test_kernel_and_numpy_twin_draw_the_same_mask(shape, monkeypatch, jit):
    """Forward and backward, one thread and split over three (each range starts at its own offset)."""
    from neural_arch.backend import kernels, threads

    x = na.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)
    g = na.tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32))

    def run():
        y = F.dropout(x, 0.3, generator=na.Generator(5))
        y.backward(g)
        out = (y.detach().numpy().copy(), x.grad.numpy().copy())
        x.grad = None
        return out

    fused = run()
    monkeypatch.setattr(threads.policy, "kernel_min_elements", 16)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    split = run()
    with kernels.enabled(False):
        twin = run()
    for a, b, c in zip(fused, split, twin):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(fused[1] != 0, fused[0] != 0)  # the backward's mask is the forward's


def test_draws_are_independent_and_at_the_rate():
    """Adjacent elements (consecutive counters) are uncorrelated; the rate holds in every block."""
    y = F.dropout(na.ones(1 << 20), 0.25, generator=na.Generator(11)).numpy()
    kept = (y != 0).astype(np.float64)
    assert abs(kept.mean() - 0.75) < 0.002
    assert abs(np.corrcoef(kept[:-1], kept[1:])[0, 1]) < 0.005
    assert np.all(np.abs(kept.reshape(64, -1).mean(axis=1) - 0.75) < 0.02)


def test_nan_and_inf_propagate_as_x_times_mask():
    x = na.tensor(np.array([np.nan, np.inf, -np.inf, 1.0] * 64, np.float32))
    y = F.dropout(x, 0.5, generator=na.Generator(0)).numpy()
    assert np.isnan(y[0::4]).all()  # NaN * 0 is NaN, as torch's x * mask
    assert np.isnan(y[1::4][y[1::4] != np.inf]).all()
