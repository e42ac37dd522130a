"""3-d pooling and unpooling layers: ``MaxPool3d``, ``AvgPool3d``, ``AdaptiveAvgPool3d``, ``AdaptiveMaxPool3d``,
``LPPool3d``, ``MaxUnpool1d/2d/3d``."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module
from neural_arch.nn.modules.pooling import AvgPool2d, _AdaptiveMaxPool, _AdaptivePool, _MaxPoolNd
from neural_arch.nn.modules.pooling_extra import _LPPool

__all__ = ["AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "AvgPool3d", "LPPool3d", "MaxPool3d", "MaxUnpool1d",
           "MaxUnpool2d", "MaxUnpool3d"]


class MaxPool3d(_MaxPoolNd):
    """Max over windows of ``(N, C, D, H, W)`` (``return_indices`` as torch)."""

    _pool = staticmethod(F.max_pool3d)


class AvgPool3d(AvgPool2d):
    """Mean over windows of ``(N, C, D, H, W)``."""

    _pool = staticmethod(F.avg_pool3d)


class AdaptiveAvgPool3d(_AdaptivePool):
    """Average pooling of ``(N, C, D, H, W)`` to ``output_size``."""

    _pool = staticmethod(F.adaptive_avg_pool3d)


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """Max pooling of ``(N, C, D, H, W)`` to ``output_size``."""

    _pool = staticmethod(F.adaptive_max_pool3d)


class LPPool3d(_LPPool):
    """Power-average pooling ``(sum x^p)^(1/p)`` over windows of ``(N, C, D, H, W)``."""

    def forward(self, input):
        return F.lp_pool3d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class _MaxUnpool(Module):
    _fn = None  # the functional form, set by each subclass

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, input, indices, output_size=None):
        return type(self)._fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool1d(_MaxUnpool):
    """Put each value of a max_pool1d output back at its index (zeros elsewhere)."""

    _fn = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpool):
    """Put each value of a max_pool2d output back at its index (zeros elsewhere)."""

    _fn = staticmethod(F.max_unpool2d)


class MaxUnpool3d(_MaxUnpool):
    """Put each value of a max_pool3d output back at its index (zeros elsewhere)."""

    _fn = staticmethod(F.max_unpool3d)
