"""The optimizer kernels against their formulas (bit-for-bit against the twins: tests/optim)."""

import math

import numpy as np
import pytest

from neural_arch.backend.kernels import optim

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


def test_adam_step_matches_numpy_formula():
    p = rng.standard_normal(1000).astype(f32)
    g = rng.standard_normal(1000).astype(f32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p0 = p.copy()
    lr, wd, bc1, bc2 = 1e-3, 0.01, 0.1, 0.001
    optim.adam_kernel(p, g, m, v, f32(lr / bc1), f32(0.1), f32(0.999), f32(0.001), f32(1e-8), f32(0.0),
                  f32(1 - lr * wd), f32(math.sqrt(bc2)), False, m)
    pref = p0 * (1 - lr * wd)
    mref, vref = 0.1 * g, 0.001 * g * g
    pref = pref - (lr / bc1) * mref / (np.sqrt(vref) / math.sqrt(bc2) + 1e-8)
    np.testing.assert_allclose(p, pref, rtol=1e-6, atol=1e-7)
