"""Convolutions: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d``.

Weights are torch's layout: ``(out_channels, in_channels / groups, *kernel)``, and
``(in_channels, out_channels / groups, *kernel)`` for the transposed convolution.
Init (torch's): ``kaiming_uniform_(a=sqrt(5))``, bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
with ``fan_in = weight.shape[1] * prod(kernel)``.
"""

from __future__ import annotations

import math

from neural_arch.errors import ConfigError
from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _ntuple(value, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ConfigError(f"expected {n} values, got {tuple(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


class _ConvNd(Module):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                 output_padding, groups, bias, padding_mode, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ConfigError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ConfigError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                              f"divisible by groups ({groups})")
        if padding_mode not in _PAD_MODES:
            raise ConfigError(f"{name}: padding_mode must be one of {sorted(_PAD_MODES)}, got {padding_mode!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ConfigError(f"{name}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, self._nd)):
                raise ConfigError(f"{name}: padding='same' is not supported for strided convolutions")
        n = self._nd
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n)
        self.dilation = _ntuple(dilation, n)
        self.transposed = transposed
        self.output_padding = _ntuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        shape = ((in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups))
        self.weight = empty_param(*shape, *self.kernel_size, dtype=dtype, device=device)
        self.register_parameter("bias", empty_param(out_channels, dtype=dtype, device=device) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            init.uniform_fan_in_bias_(self.bias, fan_in)

    def _padded(self, input):
        """Non-zero padding modes pad explicitly, then convolve with padding 0 (as torch does)."""
        if self.padding_mode == "zeros":
            return input, self.padding
        pads = []
        for p in reversed(self.padding):  # F.pad wants the last dim first
            pads += [p, p]
        return F.pad(input, pads, mode=_PAD_MODES[self.padding_mode]), 0

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """Conv1d, Conv2d and Conv3d: one constructor; ``_conv`` is the functional op of the dimension."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, input):
        x, padding = self._padded(input)
        return self._conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ConvTranspose(_ConvNd):
    """ConvTranspose1d/2d/3d: one constructor (zero padding only, as torch)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        if padding_mode != "zeros" or isinstance(padding, str):
            raise ConfigError(f"{type(self).__name__}: only padding_mode='zeros' and int or tuple padding are "
                              f"supported, as torch; got padding_mode={padding_mode!r}, padding={padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        return self._conv(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                          self.groups, self.dilation)


class Conv1d(_Conv):
    """1-D convolution. Input ``(N, C_in, L)`` (or ``(C_in, L)``) -> ``(N, C_out, L_out)``."""

    _nd, _conv = 1, staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution. Input ``(N, C_in, H, W)`` (or ``(C_in, H, W)``) -> ``(N, C_out, H_out, W_out)``,
    ``H_out = floor((H + 2 p - d (k - 1) - 1) / s) + 1``."""

    _nd, _conv = 2, staticmethod(F.conv2d)


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution (a.k.a. fractionally strided). ``H_out = (H - 1) s - 2 p + d (k - 1)
    + output_padding + 1``. Only ``padding_mode="zeros"``, as in torch."""

    _nd = 2

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:  # choose output_padding so the output has this size (torch's rule)
            spatial = tuple(output_size)[-2:]
            output_padding = []
            for i, want in enumerate(spatial):
                n_in = input.shape[-2 + i]
                reach = self.dilation[i] * (self.kernel_size[i] - 1)
                base = (n_in - 1) * self.stride[i] - 2 * self.padding[i] + reach + 1
                extra = want - base
                if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                    raise ConfigError(f"ConvTranspose2d: requested output size {tuple(output_size)} is not reachable; "
                                      f"sizes from {base} to {base + max(self.stride[i], self.dilation[i]) - 1} are")
                output_padding.append(extra)
            output_padding = tuple(output_padding)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)
