"""``AdaptiveAvgPool1d``, ``AdaptiveMaxPool1d``, ``LPPool1d``, ``LPPool2d``, ``FractionalMaxPool2d/3d``."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module
from neural_arch.nn.modules.pooling import _AdaptiveMaxPool, _AdaptivePool

__all__ = ["AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "FractionalMaxPool2d", "FractionalMaxPool3d", "LPPool1d",
           "LPPool2d"]


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling of ``(N, C, L)`` to ``output_size`` steps."""

    _pool = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max pooling of ``(N, C, L)`` to ``output_size`` steps (``return_indices`` as torch)."""

    _pool = staticmethod(F.adaptive_max_pool1d)


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


class _FractionalMaxPool(Module):
    _fn = None  # the functional form, set by each subclass

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None):
        super().__init__()
        self.kernel_size, self.output_size, self.output_ratio = kernel_size, output_size, output_ratio
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)

    def forward(self, input):
        return type(self)._fn(input, self.kernel_size, self.output_size, self.output_ratio, self.return_indices,
                              _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPool):
    """Fractional max pooling of ``(N, C, H, W)`` (pseudo-random window starts; see ``F.fractional_max_pool2d``)."""

    _fn = staticmethod(F.fractional_max_pool2d)


class FractionalMaxPool3d(_FractionalMaxPool):
    """Fractional max pooling of ``(N, C, T, H, W)``."""

    _fn = staticmethod(F.fractional_max_pool3d)
