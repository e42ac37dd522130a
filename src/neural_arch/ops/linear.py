"""``linear``: y = x W^T + b, with torch's weight layout (out_features, in_features)."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import LOWER, autocast_args
from neural_arch.autograd.autocast import STATE as autocast_state
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import gemm
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops.linalg import einsum, matmul

__all__ = ["linear", "bilinear"]


class Linear(Function):
    """y = x W^T + b        dL/dx = g W,   dL/dW = g^T x (summed over the batch),   dL/db = sum g

    One node instead of matmul, a transpose view and add: the bias is added in place into
    the GEMM's output, and dL/dW comes out of one GEMM over the flattened batch, already
    in W's memory layout (nn.Linear's W is column-major: then the GEMM is x^T g, written
    into the transpose of a column-major array), so nothing is copied before it becomes
    ``.grad``.
    """

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, w, *b):
        Linear.save_only(ctx, x, w, *b)
        y = gemm.matmul(x, w.T)
        if b:
            y += b[0]
        return y

    @staticmethod
    def save_only(ctx, x, w, *b):
        """What backward reads (``Function.save_only``): x and W, and W's memory layout."""
        need = ctx.needs_input_grad
        ctx.save_for_backward(x if need[1] else None, w if need[0] else None)
        ctx.w_column_major = gemm.column_major(w)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])  # (batch, out)
        gx = gemm.matmul(grad, w) if w is not None else None
        gw = None
        if x is not None:
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])  # (batch, in)
            if ctx.w_column_major:  # (out, in) column-major = the transpose of a row-major x^T g
                gw = np.empty((g2.shape[1], x2.shape[1]), x2.dtype, order="F")
                gemm.matmul(x2.T, g2, out=gw.T)
            else:
                gw = gemm.matmul(g2.T, x2)
        if len(ctx.needs_input_grad) == 3:
            return gx, gw, (_column_sums(g2) if ctx.needs_input_grad[2] else None)
        return gx, gw


_ones_cache: dict = {}


def _column_sums(g2):
    """sum over rows of g2 (batch, out), as a vector-times-matrix product 1^T g2: BLAS reads g2 once,
    faster than ``g2.sum(axis=0)`` at every size measured (BENCHMARKS.md) and a little more accurate.
    Through ``gemm.matmul``, not ``np.matmul``: NumPy's OpenBLAS threads the product on threads of its own,
    which right after one of our threaded products wait for the cores our helpers still poll on."""
    if type(g2) is not np.ndarray or not is_floating(g2.dtype):
        return g2.sum(axis=0)
    if g2.dtype.itemsize == 2:  # float16/bfloat16: summed in float32 and rounded once (gemm), as torch
        return gemm.matmul(np.ones(g2.shape[0], g2.dtype), g2)
    key = (g2.shape[0], g2.dtype)
    ones = _ones_cache.get(key)
    if ones is None:
        if len(_ones_cache) > 64:  # many different batch sizes: start over rather than grow
            _ones_cache.clear()
        ones = _ones_cache[key] = np.ones(g2.shape[0], g2.dtype)
    return gemm.matmul(ones, g2)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """y = x W^T + b  (see :class:`Linear`)

    ``input`` (*, in), ``weight`` (out, in) or (in,), ``bias`` (out,) or (). Inputs of one
    dtype with a 2-d weight and a (out,) bias (every nn.Linear) take the one-node path;
    the other cases compose matmul and add, with torch's type promotion.
    """
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise DTypeError("linear: input and weight must be Tensors")
    if autocast_state.enabled:  # linear as a whole is on autocast's low-precision list, bias included
        input, weight, bias = autocast_args(LOWER, input, weight, bias)  # noqa: A001
    x, w = input.data, weight.data
    if (w.ndim == 2 and x.ndim and x.shape[-1] == w.shape[1] and x.dtype == w.dtype and is_floating(x.dtype)
            and (bias is None or (bias.data.dtype == x.dtype and bias.data.shape == w.shape[:1]))):
        return Linear.apply(input, weight, *(() if bias is None else (bias,)))  # every nn.Linear: checked above
    if weight.data.ndim not in (1, 2):
        raise ShapeError(f"linear: weight must be (out_features, in_features) or (in_features,), "
                         f"got {shape_str(weight.shape)}")
    if input.data.ndim == 0 or input.data.shape[-1] != weight.data.shape[-1]:
        raise ShapeError(f"linear: input {shape_str(input.shape)} must end in in_features="
                         f"{weight.data.shape[-1]} (weight {shape_str(weight.shape)})")
    want = weight.data.shape[:1] if weight.data.ndim == 2 else ()
    if bias is not None and tuple(bias.shape) not in (want, ()):
        raise ShapeError(f"linear: bias must have shape {shape_str(want)}, got {shape_str(bias.shape)}")
    out = matmul(input, weight.mT if weight.data.ndim == 2 else weight)
    return out + bias if bias is not None else out


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T A_k x2 + b_k with ``weight`` (out, in1, in2) (an einsum)."""
    if weight.data.ndim != 3 or input1.data.shape[-1] != weight.data.shape[1] or \
            input2.data.shape[-1] != weight.data.shape[2]:
        raise ShapeError(f"bilinear: weight {shape_str(weight.shape)} must be (out, {input1.data.shape[-1]}, "
                         f"{input2.data.shape[-1]})")
    out = einsum("...i,kij,...j->...k", input1, weight, input2)
    return out + bias if bias is not None else out
