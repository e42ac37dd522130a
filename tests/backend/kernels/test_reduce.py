"""reduce.sum_axes / mean_axes over trailing dims: the kernel accumulates each row in float64."""

import numpy as np
import pytest

from neural_arch.backend import kernels
from neural_arch.backend.kernels import reduce


@pytest.mark.parametrize("axes", [(2,), (1, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_trailing_sums_and_means(axes, keepdim, impl):
    x = (np.random.default_rng(0).standard_normal((40, 30, 50)) * 10 + 3).astype(np.float32)
    before = kernels.calls["sum_axes"] + kernels.calls["mean_axes"]
    s, m = reduce.sum_axes(x, axes, keepdim), reduce.mean_axes(x, axes, keepdim)
    assert kernels.calls["sum_axes"] + kernels.calls["mean_axes"] - before == (2 if impl == "kernel" else 0)
    x64 = x.astype(np.float64)
    assert s.dtype == m.dtype == np.float32
    np.testing.assert_allclose(s, x64.sum(axis=axes, keepdims=keepdim), rtol=1e-5)
    np.testing.assert_allclose(m, x64.mean(axis=axes, keepdims=keepdim), rtol=1e-5)


def test_leading_axes_and_full_sums_take_numpy(jit):
    x = np.ones((200, 300), np.float32)
    assert reduce.sum_axes(x, (0,), False).shape == (300,)
    assert float(reduce.sum_axes(x, (0, 1), False)) == 60000.0
