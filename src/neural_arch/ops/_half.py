"""Half precision (float16, bfloat16) for ops whose arithmetic is more than one rounding.

NumPy and ml_dtypes compute each ufunc on half arrays in float32 and round the result once, so
``x + y`` or ``x * y`` on half arrays is already what torch computes. A formula of several ufuncs
(gelu, softmax, layer_norm, a sum over many elements) would round after every step and drift: torch
instead widens to float32 inside its kernel (its "opmath" type), computes the whole op there and rounds
the result once. ``@float32_inside`` gives an op class that behaviour:

    forward:   half inputs -> float32 -> the op's own forward -> output rounded to the input's dtype
    backward:  half gradient and half saved arrays -> float32 -> the op's own backward -> each input
               gradient rounded to that input's dtype

Float32 and float64 inputs go straight to the op's own methods (one dtype test). What forward saves
for backward is stored in half again when it is an input or the output (exactly what torch keeps, so
saved activations take half the memory); float32 statistics it computed (a norm's mean and rstd) stay
float32, as in torch. The widening and rounding of bfloat16 arrays are kernels on their bits
(``backend/kernels/half.py``).
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import unbroadcast
from neural_arch.backend.dtypes import bfloat16, float16
from neural_arch.backend.kernels.half import to_float32, to_half

_F32 = np.dtype(np.float32)
HALF = (float16,) + ((bfloat16,) if bfloat16 is not None else ())


def compute_dtype(dtype) -> np.dtype:
    """The dtype an op computes in for inputs of ``dtype``: float32 for half, else ``dtype`` itself
    (for constants an op builds outside ``forward``: masks, interpolation weights)."""
    return _F32 if dtype in HALF else dtype


def _is_half(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype in HALF


def float32_inside(cls):
    """Class decorator: ``cls`` computes in float32 for float16/bfloat16 inputs (see the module doc)."""
    forward, backward = cls.forward, cls.backward

    def half_forward(ctx, *arrays, **params):
        for a in arrays:
            if type(a) is np.ndarray and (a.dtype is float16 or a.dtype is bfloat16):
                break
        else:  # float32/float64 (and CuPy arrays): the op itself, at the cost of this loop
            return forward(ctx, *arrays, **params)
        wide = [to_float32(a) if _is_half(a) else a for a in arrays]
        out = forward(ctx, *wide, **params)
        dtype = next(a.dtype for a in arrays if _is_half(a))
        # Tensor inputs with no gradient (masks, targets) keep their dtype; the others get it back.
        ctx._half_in = tuple([(a.dtype, a.shape) if _is_half(a) else None for a in arrays])
        if isinstance(out, np.generic):  # a full reduction's NumPy scalar
            out = np.asarray(out)
        narrow = to_half(out, dtype) if isinstance(out, np.ndarray) and out.dtype == _F32 else out
        saved = ctx._saved
        if saved:
            originals = {id(w): a for w, a in zip(wide, arrays) if w is not a}
            originals[id(out)] = narrow
            ctx._saved = tuple([originals.get(id(s), s) if isinstance(s, np.ndarray) else s for s in saved])
        return narrow

    def half_backward(ctx, grad):
        inputs = getattr(ctx, "_half_in", None)
        if inputs is None:
            return backward(ctx, grad)
        saved = ctx._saved
        if saved:
            ctx._saved = tuple([to_float32(s) if _is_half(s) else s for s in saved])
        grads = backward(ctx, to_float32(grad) if _is_half(grad) else grad)
        if saved:
            ctx._saved = saved  # (half again: retain_graph keeps the small copies)
        single = not isinstance(grads, tuple)
        grads = (grads,) if single else grads
        out = tuple([_narrow(g, i) for g, i in zip(grads, inputs)]) + grads[len(inputs):]
        return out[0] if single else out

    def _narrow(grad, half_input):
        if half_input is None or not isinstance(grad, np.ndarray):
            return grad
        dtype, shape = half_input
        # a gradient in the broadcast shape is summed in float32 before its one rounding
        grad = unbroadcast(grad, shape)
        return to_half(grad, dtype) if grad.dtype == _F32 else grad.astype(dtype)

    half_forward.__doc__, half_backward.__doc__ = forward.__doc__, backward.__doc__
    cls.forward, cls.backward = staticmethod(half_forward), staticmethod(half_backward)
    return cls
