"""Half precision (float16, bfloat16) in an op: its ``half`` class attribute.

NumPy and ml_dtypes compute each ufunc on half arrays in float32 and round the result once, so
``x + y`` or ``x * y`` on half arrays is already what torch computes. A formula of several ufuncs
(gelu, softmax, layer_norm, a sum over many elements) would round after every step and drift: torch
instead widens to float32 inside its kernel (its "opmath" type), computes the whole op there and rounds
the result once. An op class says which it needs with one class attribute:

``half = "float32"``
    ``Function.apply`` widens the op's float16/bfloat16 input arrays to float32, runs the op's own
    ``forward``, and rounds its float32 output once to the input's dtype; the backward engine runs the
    op's ``backward`` on the float32 gradient and saved arrays and rounds each input's gradient once to
    that input's dtype (summed to the input's shape in float32 first). What forward saved is stored in
    half again where it is an input or the output (exactly what torch keeps, so saved activations take
    half the memory); float32 statistics it computed (a norm's mean and rstd) stay float32, as in torch.
    Inputs that are not half (masks, targets, indices) keep their dtype.

``half = None`` (``Function``'s default, or absent)
    The op runs on the half arrays themselves, forward and backward: one rounding per ufunc, right for
    an op that is one ufunc or moves elements without arithmetic (add, reshape, index), and for an op
    whose kernel reads and writes bfloat16/float16 itself and accumulates in float32.

``half = "unsupported"``
    ``Function.apply`` raises a ``DTypeError`` naming the op and the dtype and saying to cast to float32:
    for the ops torch has no half-precision CPU kernel for (decompositions, FFTs, CTC loss, gamma
    sampling, complex construction) and the ops that only take complex inputs (NumPy has no half complex).

The decision is made once per call, in ``Function.apply`` (a float32 or float64 call of a
``"float32"`` op pays one test of its inputs' dtypes, an op with ``None`` pays none) and once per node
in the engine (``autograd/function.py``: ``_forward_in_float32``, ``backward_in_float32``). The widening
and rounding of bfloat16 arrays are kernels on their bits (``backend/kernels/half.py``).
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.dtypes import bfloat16, float16

_F32 = np.dtype(np.float32)
HALF = (float16,) + ((bfloat16,) if bfloat16 is not None else ())


def compute_dtype(dtype) -> np.dtype:
    """The dtype an op computes in for inputs of ``dtype``: float32 for half, else ``dtype`` itself
    (for constants an op builds outside ``forward``: masks, interpolation weights)."""
    return _F32 if dtype in HALF else dtype
