"""``Identity``, ``Linear`` and ``Bilinear``."""

from __future__ import annotations

import math

from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored, as in torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):  # noqa: A002
        return input


class Linear(Module):
    """``y = x W^T + b`` with ``weight`` (out_features, in_features) and ``bias`` (out_features,).

    Init (torch's): ``W ~ U(-1/sqrt(in), 1/sqrt(in))`` via ``kaiming_uniform_(a=sqrt(5))``, and
    ``b ~ U(-1/sqrt(in), 1/sqrt(in))``.

    Shape: input ``(*, in_features)`` -> output ``(*, out_features)``.

    Memory layout: ``weight`` has torch's shape, stored column-major (Fortran order), so that
    ``W^T`` is a row-major (in, out) matrix, which OpenBLAS multiplies a short batch by faster than
    the transpose of a row-major W (BENCHMARKS.md). Only this module and the GEMM layer
    (``ops.linear``, ``backend.gemm``) know it: every other op, and the optimizers, take any
    layout. ``weight.is_contiguous()`` says the truth, False (it is not row-major; torch's is True).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = empty_param(out_features, in_features, dtype=dtype, device=device, order="F")
        self.register_parameter("bias", empty_param(out_features, dtype=dtype, device=device) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            init.uniform_fan_in_bias_(self.bias, self.in_features)

    def forward(self, input):  # noqa: A002
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """``y_k = x1^T A_k x2 + b_k`` with ``weight`` (out, in1, in2); init U(-1/sqrt(in1), 1/sqrt(in1))."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = empty_param(out_features, in1_features, in2_features, dtype=dtype, device=device)
        self.register_parameter("bias", empty_param(out_features, dtype=dtype, device=device) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
