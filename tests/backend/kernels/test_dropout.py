"""dropout.apply_mask: the kernel draws exactly the twin's SplitMix64 mask (one thread and split)."""

import numpy as np
import pytest

from neural_arch.backend import threads
from neural_arch.backend.kernels import dropout

pytestmark = pytest.mark.usefixtures("jit")


@pytest.mark.parametrize("split", [False, True])
def test_kernel_draws_the_twins_mask(split, monkeypatch):
    if split:
        monkeypatch.setattr(threads.policy, "kernel_min_elements", 16)
        monkeypatch.setattr(threads.policy, "num_threads", 3)
    x = np.random.default_rng(0).standard_normal((37, 29)).astype(np.float32)
    x[0, :3] = [np.inf, -np.inf, np.nan]
    seed, threshold = np.uint64(987654321), np.uint64(round(0.3 * (1 << 24)))
    got = dropout.apply_mask(x, seed, threshold, 1 / 0.7)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got, dropout.apply_mask.twin(x, seed, threshold, 1 / 0.7))
