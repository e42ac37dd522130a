"""``linear``: y = x W^T + b, with torch's weight layout (out_features, in_features)."""

from __future__ import annotations

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops.linalg import matmul

__all__ = ["linear", "bilinear"]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """y = x W^T + b        dL/dx = g W,   dL/dW = g^T x (summed over the batch),   dL/db = sum g

    A composition of matmul (whose backward does the batch sum in one GEMM) and add.
    ``input`` (*, in), ``weight`` (out, in) or (in,), ``bias`` (out,) or ().
    """
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise DTypeError("linear: input and weight must be Tensors")
    if weight.data.ndim not in (1, 2):
        raise ShapeError(f"linear: weight must be (out_features, in_features) or (in_features,), "
                         f"got {shape_str(weight.shape)}")
    if input.data.ndim == 0 or input.data.shape[-1] != weight.data.shape[-1]:
        raise ShapeError(f"linear: input {shape_str(input.shape)} must end in in_features="
                         f"{weight.data.shape[-1]} (weight {shape_str(weight.shape)})")
    out = matmul(input, weight.mT if weight.data.ndim == 2 else weight)
    if bias is not None:
        want = weight.data.shape[:1] if weight.data.ndim == 2 else ()
        if tuple(bias.shape) not in (want, ()):
            raise ShapeError(f"linear: bias must have shape {shape_str(want)}, got {shape_str(bias.shape)}")
        out = out + bias
    return out


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T A_k x2 + b_k with ``weight`` (out, in1, in2) (an einsum)."""
    from neural_arch.ops.linalg import einsum  # noqa: PLC0415

    if weight.data.ndim != 3 or input1.data.shape[-1] != weight.data.shape[1] or \
            input2.data.shape[-1] != weight.data.shape[2]:
        raise ShapeError(f"bilinear: weight {shape_str(weight.shape)} must be (out, {input1.data.shape[-1]}, "
                         f"{input2.data.shape[-1]})")
    out = einsum("...i,kij,...j->...k", input1, weight, input2)
    return out + bias if bias is not None else out
