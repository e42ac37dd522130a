"""bfloat16 <-> float32 conversion, the one extra pass that half-precision storage costs an op that
computes in float32 (``ops/_half.py``).

A bfloat16 is the top 16 bits of a float32, so the kernels work on the bits (a bfloat16 array viewed as
uint16), and both loops vectorise:

    widen:   f32 bits = b16 bits << 16                                             (exact)
    narrow:  b16 bits = (f32 bits + 0x7FFF + (bit 16 of f32 bits)) >> 16          (round to nearest even,
             as torch and ml_dtypes round; a NaN becomes the quiet NaN 0x7FC0 with its sign, as ml_dtypes)

The twins are ml_dtypes' own conversions (``astype``); float16 always takes NumPy's (F16C) conversion.
Large arrays run on all threads (``Kernel``), from ``policy.kernel_min_elements``.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.dtypes import bfloat16
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import FAST, kernel
from neural_arch.backend.threads import policy

_F32 = np.dtype(np.float32)


def _widen(x):
    """x (bfloat16) as float32 (C order, or F order for an F-ordered x: see ``widen``)"""
    return x.astype(_F32, order="A")


def _narrow(x):
    """x (float32) rounded to bfloat16"""
    return x.astype(bfloat16)


@kernel(FAST, rows=(0, 1))
def widen_kernel(bits, out):
    """out = the float32 whose top half is bits (flat, contiguous uint16 -> float32)"""
    for i in range(bits.size):
        out[i] = np.uint32(np.uint32(bits[i]) << np.uint32(16)).view(np.float32)


@kernel(FAST, rows=(0, 1))
def narrow_kernel(x, out):
    """out = the bits of bfloat16(x), rounded to nearest even (flat, contiguous float32 -> uint16)"""
    for i in range(x.size):
        b = np.float32(x[i]).view(np.uint32)
        rounded = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        quiet_nan = ((b >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
        out[i] = np.uint16(quiet_nan if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded)


@dispatch(_widen, min_elements=policy.small_kernel_min_elements, first=bfloat16)
def widen(x):
    if not x.flags.c_contiguous:  # (F order: nn.Linear's column-major weights, kept so for the product;
        # any other layout, e.g. attention's heads as permuted views, comes out C-contiguous, as the ops
        # that read it want, so that an op's ascontiguousarray does not copy the float32 array again)
        return widen(x.T).T if x.flags.f_contiguous else widen(np.ascontiguousarray(x))
    out = np.empty(x.shape, _F32)
    widen_kernel(x.reshape(-1).view(np.uint16), out.reshape(-1))
    return out


@dispatch(_narrow, min_elements=policy.small_kernel_min_elements)
def narrow(x):
    if not x.flags.c_contiguous:
        return narrow(x.T).T if x.flags.f_contiguous else _narrow(x)
    out = np.empty(x.shape, bfloat16)
    narrow_kernel(x.reshape(-1), out.reshape(-1).view(np.uint16))
    return out


def to_float32(x):
    """A float16 or bfloat16 array as float32 (bfloat16 through ``widen``), C-ordered unless x is F-ordered."""
    return widen(x) if x.dtype == bfloat16 else x.astype(_F32, order="A")


def to_half(x, dtype):
    """A float32 array rounded to ``dtype`` (float16 or bfloat16; bfloat16 through ``narrow``)."""
    if dtype == bfloat16 and x.dtype == _F32:
        return narrow(x)
    return x.astype(dtype)


# -- kernels that read and write bfloat16 themselves -----------------------------------------------------
KERNEL_DTYPES = (_F32, np.dtype(bfloat16))
_HALF = (np.dtype(np.float16), np.dtype(bfloat16))  # ``dispatch(first=...)`` of a kernel with a bfloat16 path
_BITS = np.dtype(np.uint16)


def bits(a):
    """What a kernel receives for ``a``: a bfloat16 array as its uint16 bits (a view, no copy), which
    the kernel reads through ``_jit.f32`` and writes through ``_jit.fit``; anything else as it is."""
    return a.view(_BITS) if a.dtype == bfloat16 else a


def widened(twin, narrow=(0,), like=0):
    """The NumPy twin of a kernel with a bfloat16 path (what runs without numba, for float16, or for
    arguments the kernel does not take): float16/bfloat16 arguments widened to float32, ``twin`` in
    float32, and the outputs at positions ``narrow`` rounded to the dtype of argument ``like`` when it is
    half, which is what the kernel computes (NumPy on half arrays would round after every ufunc)."""

    def run(*args):
        if not any(type(a) is np.ndarray and a.dtype in _HALF for a in args):
            return twin(*args)
        out = twin(*[to_float32(a) if type(a) is np.ndarray and a.dtype in _HALF else a for a in args])
        dtype = args[like].dtype
        if dtype not in _HALF:
            return out
        if not isinstance(out, tuple):
            return to_half(out, dtype)
        return tuple(to_half(o, dtype) if i in narrow and o is not None else o for i, o in enumerate(out))

    run.__doc__ = twin.__doc__
    return run


def convert(a, dtype):
    """``a.astype(dtype)``, with float32 <-> bfloat16 through the bit kernels (a cast node's forward and
    backward: under autocast every parameter's copy and every one of their gradients)."""
    dtype = np.dtype(dtype)
    if type(a) is np.ndarray:
        if a.dtype == _F32 and dtype == bfloat16:
            return narrow(a)
        if a.dtype == bfloat16 and dtype == _F32:
            return widen(a)
    return a.astype(dtype)
