"""``Conv3d``, ``ConvTranspose1d`` and ``ConvTranspose3d``, on the convolution base of ``conv.py`` (torch's
shapes and init)."""

from __future__ import annotations

from neural_arch.errors import ConfigError
from neural_arch.nn import functional as F
from neural_arch.nn.modules.conv import _ConvNd

__all__ = ["Conv3d", "ConvTranspose1d", "ConvTranspose3d"]


class Conv3d(_ConvNd):
    """3-D convolution. Input ``(N, C_in, D, H, W)`` (or unbatched) -> ``(N, C_out, D_out, H_out, W_out)``."""

    _nd = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, input):
        x, padding = self._padded(input)
        return F.conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class ConvTranspose1d(_ConvNd):
    """Transposed 1-D convolution: ``L_out = (L - 1) s - 2 p + d (k - 1) + output_padding + 1``."""

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        if padding_mode != "zeros" or isinstance(padding, str):
            raise ConfigError("ConvTranspose1d: only padding_mode='zeros' and int padding are supported, as torch")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


class ConvTranspose3d(_ConvNd):
    """Transposed 3-D convolution: per axis ``out = (n - 1) s - 2 p + d (k - 1) + output_padding + 1``."""

    _nd = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        if padding_mode != "zeros" or isinstance(padding, str):
            raise ConfigError("ConvTranspose3d: only padding_mode='zeros' and int padding are supported, as torch")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        return F.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)
