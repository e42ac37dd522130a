"""elementwise.multiply / scale: the kernels against the twins (NumPy's own arithmetic)."""

import numpy as np
import pytest

from neural_arch.backend import threads
from neural_arch.backend.kernels import elementwise

pytestmark = pytest.mark.usefixtures("jit")


@pytest.mark.parametrize("split", [False, True])
def test_multiply_and_scale_are_numpy_bit_for_bit(split, monkeypatch):
    if split:
        monkeypatch.setattr(threads.policy, "kernel_min_elements", 64)
        monkeypatch.setattr(threads.policy, "num_threads", 3)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((70, 90)).astype(np.float32) for _ in range(2))
    np.testing.assert_array_equal(elementwise.multiply(a, b), a * b)
    np.testing.assert_array_equal(elementwise.scale(a, 0.37), a * np.float32(0.37))
    # a broadcast or a non-contiguous operand goes to NumPy, with NumPy's result
    np.testing.assert_array_equal(elementwise.multiply(a, b[:1]), a * b[:1])
    np.testing.assert_array_equal(elementwise.multiply(a.T, b.T), a.T * b.T)
