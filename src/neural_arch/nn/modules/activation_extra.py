"""More activations as modules: ``PReLU`` (learned slopes), ``RReLU``, ``Threshold``, ``Hardshrink``,
``Softshrink``, ``Tanhshrink``, ``Softsign``, ``Softmax2d``."""

from __future__ import annotations

from neural_arch.errors import ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param

__all__ = ["Hardshrink", "PReLU", "RReLU", "Softmax2d", "Softshrink", "Softsign", "Tanhshrink", "Threshold"]


class PReLU(Module):
    """``max(0, x) + a min(0, x)`` with ``num_parameters`` learned slopes (1, or one per channel), init ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):  # noqa: A002
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = empty_param(num_parameters, dtype=dtype, device=device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU: slopes ~ U(lower, upper) in training, their mean in eval."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}"


class Threshold(Module):
    """``x if x > threshold else value``."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}"


class Hardshrink(Module):
    """``x if |x| > lambd else 0``."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)


class Softshrink(Module):
    """``x - lambd`` above lambd, ``x + lambd`` below -lambd, 0 between."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.softshrink(input, self.lambd)


class Tanhshrink(Module):
    """``x - tanh(x)``."""

    def forward(self, input):
        return F.tanhshrink(input)


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, input):
        return F.softsign(input)


class Softmax2d(Module):
    """Softmax over the channels of ``(N, C, H, W)`` or ``(C, H, W)`` at every pixel."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ShapeError(f"Softmax2d: expected a 3-d or 4-d input, got {shape_str(input.shape)}")
        return F.softmax(input, -3)
