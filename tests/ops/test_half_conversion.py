"""The bfloat16 <-> float32 conversion kernels (backend/kernels/half.py) against ml_dtypes, bit for bit:
round to nearest even (ties both ways), subnormals, infinities, overflow to infinity, NaNs; contiguous
and strided arrays, small (the twin) and large (the kernel, on the threads)."""

import numpy as np
import pytest

from neural_arch.backend import kernels
from neural_arch.backend.dtypes import bfloat16
from neural_arch.backend.kernels.half import narrow, to_float32, to_half, widen


def _special_floats():
    bits = np.array([
        0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000,  # zeros, subnormals, smallest normal
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF,  # ties to even (down, up), just above/below a tie
        0x7F7FFFFF, 0x7F7F8000, 0xFF7FFFFF,  # overflow to +-inf when rounded
        0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FBFFFFF,  # inf, quiet and signalling NaNs
    ], dtype=np.uint32)
    return bits.view(np.float32)


def _as_bits(a):
    return a.view(np.uint16) if a.dtype == bfloat16 else a.view(np.uint32)


@pytest.mark.parametrize("size", [64, 1 << 18])  # the twin below the kernel threshold, the kernel above
def test_narrow_and_widen_match_ml_dtypes_bit_for_bit(size, jit):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(size) * np.exp(rng.uniform(-30, 30, size))).astype(np.float32)
    x[: len(_special_floats())] = _special_floats()
    before = kernels.calls["narrow"], kernels.calls["widen"]
    got = narrow(x)
    assert got.dtype == bfloat16
    np.testing.assert_array_equal(_as_bits(got), _as_bits(x.astype(bfloat16)))
    back = widen(got)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(_as_bits(back), _as_bits(got.astype(np.float32)))
    ran = kernels.calls["narrow"] - before[0], kernels.calls["widen"] - before[1]
    assert ran == ((1, 1) if size > 1 << 16 else (0, 0))


def test_strided_and_multidimensional(jit):
    x = np.random.default_rng(1).standard_normal((300, 400)).astype(np.float32)
    for a in (x, x.T, x[:, ::3]):
        np.testing.assert_array_equal(_as_bits(narrow(a)), _as_bits(a.astype(bfloat16)))
        h = a.astype(bfloat16)
        np.testing.assert_array_equal(widen(h), h.astype(np.float32))
        assert narrow(a).shape == a.shape


def test_float16_goes_through_numpy():
    x = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float32)
    np.testing.assert_array_equal(to_half(x, np.dtype(np.float16)), x.astype(np.float16))
    np.testing.assert_array_equal(to_float32(x.astype(np.float16)), x.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_matmul_accumulates_in_float32_and_rounds_once(dtype):
    from neural_arch.backend.gemm import matmul

    half = bfloat16 if dtype == "bfloat16" else np.dtype(np.float16)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 40)).astype(half)
    w = np.asfortranarray(rng.standard_normal((9, 40)).astype(np.float32)).astype(half)  # nn.Linear's layout
    exact = x.astype(np.float64) @ w.T.astype(np.float64)
    got = matmul(x, w.T)
    assert got.dtype == half
    # float32 accumulation then one rounding: the float32 product of the same values, rounded
    rounded = (x.astype(np.float32) @ w.T.astype(np.float32)).astype(half)
    np.testing.assert_array_equal(got.view(np.uint16), rounded.view(np.uint16))
    np.testing.assert_allclose(got.astype(np.float64), exact, rtol=1e-2, atol=1e-2)
    assert matmul(x[0], w.T).dtype == half
    mixed = matmul(x, w.T.astype(np.float32))  # a float32 operand: a float32 product
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, exact, rtol=1e-5, atol=1e-5)
