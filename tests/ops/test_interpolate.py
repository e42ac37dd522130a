"""interpolate vs torch (forward, backward, float64/float32), gradcheck, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, ShapeError

SIZES = [
    dict(size=(14, 10)),  # exact 2x: torch's `>> 1` shortcut
    dict(size=(3, 4)),  # downsampling: some input pixels get no gradient
    dict(scale_factor=2),
    dict(scale_factor=(1.7, 0.6)),  # scale passed to the kernel: 1/scale, not in/out
    dict(scale_factor=(2.5, 1.3), recompute_scale_factor=True),
    dict(size=(13, 11)),
    dict(size=(7, 9)),  # one axis unchanged
    dict(size=1),
]
MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)]


@pytest.mark.parametrize("mode,align", MODES)
@pytest.mark.parametrize("kw", SIZES)
def test_interpolate_2d_parity(kw, mode, align):
    fn = lambda m: lambda x: m.interpolate(x, mode=mode, align_corners=align, **kw)  # noqa: E731
    check(fn(F), [randn(2, 3, 7, 5, seed=1)], torch_fn=fn(TF))


@pytest.mark.parametrize("mode,align", MODES)
@pytest.mark.parametrize("kw", [SIZES[1], SIZES[3], SIZES[5]])
def test_interpolate_2d_gradcheck(kw, mode, align):
    gradcheck(lambda x: F.interpolate(x, mode=mode, align_corners=align, **kw), [randn(1, 2, 7, 5, seed=1)])


@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None), ("linear", False), ("linear", True)])
@pytest.mark.parametrize("kw", [dict(size=12), dict(size=4), dict(scale_factor=0.6), dict(scale_factor=3)])
def test_interpolate_1d_parity_and_gradcheck(kw, mode, align):
    fn = lambda m: lambda x: m.interpolate(x, mode=mode, align_corners=align, **kw)  # noqa: E731
    check(fn(F), [randn(2, 3, 7, seed=1)], torch_fn=fn(TF))
    gradcheck(fn(F), [randn(1, 2, 7, seed=1)])


def test_nearest_index_rule_is_torchs_floor():
    # 3 -> 5: floor(dst * 3/5) = [0, 0, 1, 1, 2]; nearest-exact: floor((dst + .5) * 3/5) = [0, 0, 1, 2, 2]
    x = na.tensor(np.array([[[[10.0, 20.0, 30.0]]]]))
    np.testing.assert_array_equal(F.interpolate(x, size=(1, 5)).numpy()[0, 0, 0], [10, 10, 20, 20, 30])
    np.testing.assert_array_equal(F.interpolate(x, size=(1, 5), mode="nearest-exact").numpy()[0, 0, 0],
                                  [10, 10, 20, 30, 30])


def test_upsample_benchmark_sized_float32():
    x = randn(8, 16, 28, 28, seed=2)
    for mode, align in MODES:
        fn = lambda m, mode=mode, align=align: lambda t: m.interpolate(t, scale_factor=2, mode=mode,  # noqa: E731
                                                                       align_corners=align)
        check(fn(F), [x], torch_fn=fn(TF), dtypes=(np.float32,))


def t(*shape, dtype=np.float32):
    return na.tensor(np.ones(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call,err,words",
    [
        (lambda: F.interpolate(t(1, 1, 4, 4)), ConfigError, "exactly one"),
        (lambda: F.interpolate(t(1, 1, 4, 4), size=2, scale_factor=2), ConfigError, "exactly one"),
        (lambda: F.interpolate(t(1, 1, 4, 4), size=2, mode="bicubic"), ConfigError, "mode"),
        (lambda: F.interpolate(t(1, 1, 4, 4), size=2, align_corners=True), ConfigError, "align_corners"),
        (lambda: F.interpolate(t(1, 1, 4, 4), size=2, mode="bilinear", antialias=True), ConfigError, "antialias"),
        (lambda: F.interpolate(t(1, 1, 4), size=2, mode="bilinear"), ShapeError, "4-d"),
        (lambda: F.interpolate(t(1, 1, 4, 4), size=2, mode="linear"), ShapeError, "3-d"),
        (lambda: F.interpolate(t(4, 4), size=2), ShapeError, "3-d or 4-d"),
        (lambda: F.interpolate(t(1, 1, 4, 4), size=(2, 2, 2)), ShapeError, "entries"),
        (lambda: F.interpolate(t(1, 1, 4, 4), scale_factor=0.1), ShapeError, ">= 1"),
        (lambda: F.interpolate(t(1, 1, 4, 4, dtype=np.int64), size=2), DTypeError, "floating"),
    ],
)
def test_errors(call, err, words):
    with pytest.raises(err, match=words):
        call()


def test_torch_agrees_align_corners_needs_an_interpolating_mode():
    with pytest.raises(ValueError):
        TF.interpolate(torch.ones(1, 1, 4, 4), size=2, align_corners=True)
