"""``Unfold`` (im2col) and ``Fold`` (col2im, summing overlaps) over ``F.unfold`` / ``F.fold``."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module

__all__ = ["Fold", "Unfold"]


class Unfold(Module):
    """``(N, C, H, W)`` -> ``(N, C kh kw, L)``: every sliding block as a column."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"


class Fold(Module):
    """``(N, C kh kw, L)`` -> ``(N, C, *output_size)``: the columns put back, overlapping values summed."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
