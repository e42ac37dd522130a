"""Pooling ops vs torch (forward incl. indices, backward, float64/float32), gradcheck, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, ShapeError


def same(name, **kw):
    """The same call in both frameworks: F.<name>(x, **kw) vs torch.nn.functional.<name>(x, **kw)."""
    return dict(fn=lambda x: getattr(F, name)(x, **kw), torch_fn=lambda x: getattr(TF, name)(x, **kw))


MAX2D = [
    ((2, 3, 8, 8), dict(kernel_size=2)),  # the tiling fast path
    ((2, 3, 9, 7), dict(kernel_size=2)),  # tiling a crop (odd sizes)
    ((1, 2, 9, 8), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 2, 9, 8), dict(kernel_size=(3, 2), stride=(2, 1), dilation=(2, 1), ceil_mode=True)),
    ((2, 2, 10, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 7, 7), dict(kernel_size=3, stride=1)),  # heavily overlapping windows
    ((2, 2, 7, 8), dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 0))),  # gaps between windows
    ((3, 7, 7), dict(kernel_size=2, ceil_mode=True)),  # unbatched; ceil adds a partial window
]


@pytest.mark.parametrize("xs,kw", MAX2D)
def test_max_pool2d_parity_with_indices(xs, kw):
    check(inputs=[randn(*xs, seed=1)], **same("max_pool2d", return_indices=True, **kw))
    check(inputs=[randn(*xs, seed=1)], **same("max_pool2d", **kw))
    gradcheck(lambda x: F.max_pool2d(x, **kw), [randn(*xs, seed=1)[:1]])


@pytest.mark.parametrize("xs,kw", MAX2D[:6])
def test_max_pool2d_ties_go_to_the_first_max(xs, kw):
    x = np.round(randn(*xs, seed=2))  # many equal values in each window
    check(inputs=[x], **same("max_pool2d", return_indices=True, **kw))
    check(inputs=[np.zeros(xs)], **same("max_pool2d", return_indices=True, **kw))


def test_max_pool2d_infinities():
    x = randn(1, 2, 6, 6, seed=3)
    x[0, 0, :2, :2] = -np.inf
    x[0, 1, 2, 3] = np.inf
    check(inputs=[x], **same("max_pool2d", kernel_size=2, return_indices=True), grad=False)
    check(inputs=[x], **same("max_pool2d", kernel_size=3, stride=1, padding=1, return_indices=True), grad=False)


def test_max_pool2d_nan_wins_its_window_like_torch():
    x = randn(2, 3, 6, 6, seed=4).astype(np.float32)
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = np.nan  # two NaNs in one window: torch reports the last (the float32 kernel too)
    x[1, 2, 4, 5] = np.nan
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        y, idx = F.max_pool2d(na.tensor(x), return_indices=True, **kw)
        ty, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        np.testing.assert_array_equal(np.isnan(y.numpy()), np.isnan(ty.numpy()))


MAX1D = [
    ((2, 3, 10), dict(kernel_size=2)),
    ((2, 3, 11), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 3, 11), dict(kernel_size=2, dilation=3)),
    ((3, 9), dict(kernel_size=4, stride=1)),
]


@pytest.mark.parametrize("xs,kw", MAX1D)
def test_max_pool1d_parity(xs, kw):
    check(inputs=[randn(*xs, seed=1)], **same("max_pool1d", return_indices=True, **kw))
    gradcheck(lambda x: F.max_pool1d(x, **kw), [randn(*xs, seed=1)])


AVG2D = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 3, 9, 7), dict(kernel_size=2)),
    ((1, 2, 9, 8), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 2, 9, 8), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ((2, 2, 10, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 10, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((2, 2, 7, 8), dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 0), ceil_mode=True)),
    ((2, 2, 7, 7), dict(kernel_size=3, stride=1, padding=1, divisor_override=4)),
    ((2, 2, 8, 8), dict(kernel_size=2, divisor_override=3)),
    ((2, 2, 8, 10), dict(kernel_size=(2, 3))),  # windows that tile, 2 by 3, the last column cropped
    ((2, 2, 9, 6), dict(kernel_size=(3, 1))),
    ((3, 7, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
]


@pytest.mark.parametrize("xs,kw", AVG2D)
def test_avg_pool2d_parity(xs, kw):
    check(inputs=[randn(*xs, seed=1)], **same("avg_pool2d", **kw))
    gradcheck(lambda x: F.avg_pool2d(x, **kw), [randn(*xs, seed=1)[:1]])


@pytest.mark.parametrize("kw", [dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False)])
def test_avg_pool1d_parity(kw):
    check(inputs=[randn(2, 3, 11, seed=1)], **same("avg_pool1d", **kw))
    gradcheck(lambda x: F.avg_pool1d(x, **kw), [randn(2, 3, 11, seed=1)])


ADAPTIVE = [((2, 3, 9, 8), 1), ((2, 3, 9, 8), (3, 4)), ((2, 3, 9, 8), (4, None)), ((2, 3, 9, 8), (9, 8)),
            ((2, 3, 9, 8), (5, 3)), ((2, 3, 5, 4), (7, 6)), ((3, 7, 7), 3)]


@pytest.mark.parametrize("xs,size", ADAPTIVE)
def test_adaptive_avg_pool2d_parity(xs, size):
    check(inputs=[randn(*xs, seed=1)], **same("adaptive_avg_pool2d", output_size=size))
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, size), [randn(*xs, seed=1)[:1]])


@pytest.mark.parametrize("xs,size", ADAPTIVE)
def test_adaptive_max_pool2d_parity(xs, size):
    check(inputs=[randn(*xs, seed=1)], **same("adaptive_max_pool2d", output_size=size, return_indices=True))
    check(inputs=[np.round(randn(*xs, seed=2))], **same("adaptive_max_pool2d", output_size=size, return_indices=True))
    gradcheck(lambda x: F.adaptive_max_pool2d(x, size), [randn(*xs, seed=1)[:1]])


def test_pools_on_the_benchmark_shape():
    x = randn(32, 32, 28, 28, seed=4)
    check(inputs=[x], dtypes=(np.float32,), **same("max_pool2d", kernel_size=2, return_indices=True))
    check(inputs=[x], dtypes=(np.float32,), **same("avg_pool2d", kernel_size=2))
    gradcheck(lambda t: F.max_pool2d(t, 2), [x[:2, :4]], fast_mode=True)


def test_max_pool_gradient_does_not_leak_to_non_winners():
    x = na.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    F.max_pool2d(x, 3, stride=1).sum().backward()  # the 4 windows' maxima: 10, 11, 14, 15
    expected = np.zeros((4, 4))
    expected[2, 2] = expected[2, 3] = expected[3, 2] = expected[3, 3] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


# -- errors ---------------------------------------------------------------------------------------------
def t(*shape, dtype=np.float32):
    return na.tensor(np.ones(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call,err,words",
    [
        (lambda: F.max_pool2d(t(4, 4), 2), ShapeError, "input"),
        (lambda: F.max_pool2d(t(1, 1, 1, 4, 4), 2), ShapeError, "input"),
        (lambda: F.max_pool2d(t(1, 1, 4, 4), 3, padding=2), ConfigError, "half the kernel"),
        (lambda: F.avg_pool2d(t(1, 1, 4, 4), (2, 4), padding=(1, 3)), ConfigError, "half the kernel"),
        (lambda: F.max_pool1d(t(1, 1, 4), 2, padding=2), ConfigError, "half the kernel"),
        (lambda: F.max_pool2d(t(1, 1, 2, 2), 3), ShapeError, "too small"),
        (lambda: F.avg_pool1d(t(1, 1, 2), 3), ShapeError, "too small"),
        (lambda: F.max_pool2d(t(1, 1, 4, 4), 0), ConfigError, "kernel_size"),
        (lambda: F.max_pool2d(t(1, 1, 4, 4), 2, stride=(1, 2, 3)), ConfigError, "stride"),
        (lambda: F.max_pool2d(t(1, 1, 4, 4, dtype=np.int64), 2), DTypeError, "floating"),
        (lambda: F.avg_pool2d(t(1, 1, 4, 4), 2, divisor_override=0), ConfigError, "divisor_override"),
        (lambda: F.adaptive_avg_pool2d(t(1, 1, 4, 4), 0), ConfigError, "output_size"),
        (lambda: F.adaptive_max_pool2d(t(1, 1, 4, 4), (2, 2, 2)), ConfigError, "output_size"),
        (lambda: F.adaptive_avg_pool2d(t(4, 4), 2), ShapeError, "input"),
    ],
)
def test_errors(call, err, words):
    with pytest.raises(err, match=words):
        call()


def test_torch_agrees_these_are_errors():
    with pytest.raises(RuntimeError):
        TF.max_pool2d(torch.ones(1, 1, 4, 4), 3, padding=2)
    with pytest.raises(RuntimeError):
        TF.max_pool2d(torch.ones(1, 1, 2, 2), 3)


def test_pools_take_noncontiguous_inputs():
    x = randn(2, 3, 7, 6, seed=5)
    check(inputs=[x], noncontig=True, dtypes=(np.float64,), **same("max_pool2d", kernel_size=3, stride=2, padding=1))
    check(inputs=[x], noncontig=True, dtypes=(np.float64,), **same("avg_pool2d", kernel_size=2))
    check(inputs=[x], noncontig=True, dtypes=(np.float64,), **same("adaptive_max_pool2d", output_size=(3, 4)))
