"""``AdaptiveAvgPool1d``, ``AdaptiveMaxPool1d``, ``LPPool1d``, ``LPPool2d``."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module

__all__ = ["AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "LPPool1d", "LPPool2d"]


class AdaptiveAvgPool1d(Module):
    """Average pooling of ``(N, C, L)`` to ``output_size`` steps."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool1d(Module):
    """Max pooling of ``(N, C, L)`` to ``output_size`` steps (``return_indices`` as torch)."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class _LPPool(Module):
    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode


class LPPool1d(_LPPool):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows of ``(N, C, L)``."""

    def forward(self, input):
        return F.lp_pool1d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class LPPool2d(_LPPool):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows of ``(N, C, H, W)``."""

    def forward(self, input):
        return F.lp_pool2d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)
