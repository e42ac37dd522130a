"""Depthwise conv2d (groups = channels): torch parity through F.conv2d's dispatch (forward, backward,
float64/float32; stride, padding, dilation, bias) on both implementations (the ``impl`` fixture), and
gradcheck. The kernel against its twin on raw arrays: tests/backend/kernels/test_depthwise.py."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neural_arch.nn.functional as F
from neural_arch.backend import kernels
from neural_arch.ops.depthwise import is_depthwise
from parity import check, gradcheck, randn

CASES = [dict(stride=1, padding=1), dict(stride=2, padding=2), dict(stride=(2, 1), padding=(1, 2), dilation=2),
         dict(stride=1, padding=0)]


@pytest.mark.parametrize("kw", CASES, ids=["s1p1", "s2p2", "dilated", "valid"])
def test_depthwise_conv2d_matches_torch(kw, impl):
    before = kernels.calls["depthwise_forward"], kernels.calls["depthwise_backward"]
    C, k = 5, (3 if kw.get("dilation") else 5)
    inputs = [randn(2, C, 9, 8), randn(C, 1, k, k, seed=1), randn(C, seed=2)]
    check(lambda x, w, b: F.conv2d(x, w, b, groups=C, **kw), inputs,
          torch_fn=lambda x, w, b: TF.conv2d(x, w, b, groups=C, **kw), rtol=1e-4, atol=1e-5)
    check(lambda x, w: F.conv2d(x, w, groups=C, **kw), inputs[:2],
          torch_fn=lambda x, w: TF.conv2d(x, w, groups=C, **kw), rtol=1e-4, atol=1e-5)
    ran = kernels.calls["depthwise_forward"] - before[0], kernels.calls["depthwise_backward"] - before[1]
    assert ran == ((2, 2) if impl == "kernel" else (0, 0))  # float32 on the kernels; float64 on the twin


def test_depthwise_gradcheck_and_dispatch():
    C = 3
    assert is_depthwise((2, C, 6, 6), (C, 1, 3, 3), C)
    assert not is_depthwise((2, C, 6, 6), (2 * C, 1, 3, 3), C)  # a channel multiplier: the general path
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=C),
                     [randn(2, C, 6, 5), randn(C, 1, 3, 3, seed=1), randn(C, seed=2)])


def test_half_precision_takes_the_numpy_twin():
    import neural_arch as na

    x, w = randn(1, 3, 6, 6).astype(np.float16), randn(3, 1, 3, 3, seed=1).astype(np.float16)
    y = F.conv2d(na.tensor(x), na.tensor(w), padding=1, groups=3).numpy()
    expect = TF.conv2d(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(w.astype(np.float32)), padding=1,
                       groups=3).numpy()
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), expect.astype(np.float32), rtol=1e-2, atol=1e-2)

