"""embedding.scatter_rows: repeated ids accumulate, on both implementations."""

import numpy as np

from neural_arch.backend import kernels
from neural_arch.backend.kernels import embedding


def test_scatter_rows_accumulates_repeats(impl):
    ids = np.array([1, 3, 1, 0, 1])
    g = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    before = kernels.calls["scatter_rows"]
    out = embedding.scatter_rows(g, ids, 5)
    assert kernels.calls["scatter_rows"] - before == (impl == "kernel")
    ref = np.zeros((5, 4), np.float32)
    np.add.at(ref, ids, g)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert out.dtype == np.float32 and not out[[2, 4]].any()
