"""pool.max_pool2d_index / max_pool_scatter: the kernels against the twins (torch's tie and NaN rules)."""

import numpy as np
import pytest

from neural_arch.backend.kernels import pool

pytestmark = pytest.mark.usefixtures("jit")


@pytest.mark.parametrize("geometry", [
    # kernel, stride, padding, dilation
    ((2, 2), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 3), (1, 1), (0, 1), (2, 1)),
    ((3, 3), (1, 1), (0, 0), (1, 1)),  # every window whole: the 3x3 path's row-by-row merge
])
def test_index_and_scatter_match_the_twins(geometry):
    k, s, p, d = geometry
    x = np.random.default_rng(0).integers(-3, 3, (2, 3, 9, 8)).astype(np.float32)  # many ties
    x[0, 0, 1, 1], x[1, 2, :, :2] = np.nan, -np.inf
    x[0, 1, 2, 2] = x[0, 1, 3, 1] = x[0, 1, 4, 3] = np.nan  # NaNs in two rows of the same windows: the last wins
    out_hw = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, d))
    index, values = pool.max_pool2d_index(x, k, s, p, d, out_hw)
    ref_index, _ = pool.max_pool2d_index.twin(x, k, s, p, d, out_hw)
    np.testing.assert_array_equal(index, ref_index)
    planes = x.reshape(6, -1)
    np.testing.assert_array_equal(values.reshape(6, -1), np.take_along_axis(planes, index.reshape(6, -1), 1))
    g = np.random.default_rng(1).standard_normal(values.shape).astype(np.float32)
    for overlapping in (False, True):
        if overlapping or s[0] >= k[0] * d[0] and s[1] >= k[1] * d[1]:
            np.testing.assert_allclose(pool.max_pool_scatter(g, index, x.shape, overlapping),
                                       pool.max_pool_scatter.twin(g, index, x.shape, overlapping), rtol=1e-6)
