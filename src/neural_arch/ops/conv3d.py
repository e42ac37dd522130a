"""conv3d, conv_transpose3d, conv_transpose1d and conv_tbc as exact compositions of the 2-d convolutions.

conv3d: a 3-d kernel is kd 2-d kernels, one per depth tap. For tap k the input planes it meets are
``xpad[:, :, k dd + sd o]`` for the output depths o, so the layer is the sum over taps of one conv2d
of those planes (the output depths folded into the batch) by ``W[:, :, k]``. kd conv2d calls; their
backward is conv2d's.

conv_transpose3d: input depth d meets tap k at output depth d sd + k dd - pd, so each tap is one
conv_transpose2d of the input planes (depths folded into the batch) whose result is spread over the
output depths by an index_select (zeros where no input depth lands), and the taps are summed.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops.conv import _batched, _unbatch, check_float_inputs, conv1d, conv2d, conv_transpose2d, ntuple
from neural_arch.ops.index import index_select
from neural_arch.ops.shape import cat, pad, permute, reshape

__all__ = ["conv3d", "conv_tbc", "conv_transpose1d", "conv_transpose3d"]


def _same_padding(kernel, dilation):
    """(lo, hi) per dim for padding='same': total d (k - 1), the odd pixel at the end (as torch)."""
    return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-D convolution of ``(N, C, D, H, W)`` by ``(O, C/groups, kd, kh, kw)`` (``padding``: int, triple,
    'valid' or 'same'); a 4-d input is one unbatched sample."""
    op = "conv3d"
    x, unbatched = _batched(input, 5, op, "(N, C, D, H, W)")
    if weight.ndim != 5:
        raise ShapeError(f"{op}: weight must be 5-d (out_channels, in_channels/groups, kd, kh, kw), "
                         f"got {shape_str(weight.shape)}")
    check_float_inputs(op, x, weight, bias)
    stride = ntuple(stride, 3, "stride", op)
    dilation = ntuple(dilation, 3, "dilation", op)
    kernel = tuple(weight.shape[2:])
    if padding == "same":
        if stride != (1, 1, 1):
            raise ConfigError(f"{op}: padding='same' needs stride 1, got {stride}")
        widths = _same_padding(kernel, dilation)
        x = pad(x, tuple(v for lo_hi in reversed(widths) for v in lo_hi))
        padding = (0, 0, 0)
    elif padding == "valid":
        padding = (0, 0, 0)
    padding = ntuple(padding, 3, "padding", op, minimum=0)
    if x.shape[1] != weight.shape[1] * groups:
        raise ShapeError(f"{op}: input has {x.shape[1]} channels, weight {shape_str(weight.shape)} with groups="
                         f"{groups} expects {weight.shape[1] * groups}")
    if padding[0]:
        x = pad(x, (0, 0, 0, 0, padding[0], padding[0]))
    N, C, D = x.shape[:3]
    sd, dd, kd = stride[0], dilation[0], kernel[0]
    Do = (D - dd * (kd - 1) - 1) // sd + 1
    if Do < 1:
        raise ShapeError(f"{op}: kernel depth {kd} (dilation {dd}) is larger than the padded input depth {D}")
    y = None
    for k in range(kd):
        start = k * dd
        planes = x[:, :, start:start + sd * (Do - 1) + 1:sd]  # (N, C, Do, H, W)
        planes = reshape(permute(planes, (0, 2, 1, 3, 4)), (N * Do, C) + tuple(x.shape[3:]))
        part = conv2d(planes, weight[:, :, k], None, stride[1:], padding[1:], dilation[1:], groups)
        y = part if y is None else y + part
    out_ch, Ho, Wo = y.shape[1:]
    y = permute(reshape(y, (N, Do, out_ch, Ho, Wo)), (0, 2, 1, 3, 4))
    if bias is not None:
        y = y + reshape(bias, (out_ch, 1, 1, 1))
    return _unbatch(y, unbatched)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-D convolution of ``(N, C_in, L)`` by ``(C_in, C_out/groups, k)``: conv_transpose2d on a
    unit-height image."""
    op = "conv_transpose1d"
    x, unbatched = _batched(input, 3, op, "(N, C, L)")
    if weight.ndim != 3:
        raise ShapeError(f"{op}: weight must be 3-d (in_channels, out_channels/groups, k), got "
                         f"{shape_str(weight.shape)}")
    s, p, o, d = (ntuple(v, 1, name, op, minimum=m)[0] for v, name, m in
                  ((stride, "stride", 1), (padding, "padding", 0), (output_padding, "output_padding", 0),
                   (dilation, "dilation", 1)))
    x4 = reshape(x, (x.shape[0], x.shape[1], 1, x.shape[2]))
    w4 = reshape(weight, (weight.shape[0], weight.shape[1], 1, weight.shape[2]))
    y = conv_transpose2d(x4, w4, bias, (1, s), (0, p), (0, o), groups, (1, d))
    return _unbatch(reshape(y, (y.shape[0], y.shape[1], y.shape[3])), unbatched)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-D convolution of ``(N, C_in, D, H, W)`` by ``(C_in, C_out/groups, kd, kh, kw)``; per axis
    ``out = (n - 1) s - 2 p + d (k - 1) + output_padding + 1`` (see the module doc)."""
    op = "conv_transpose3d"
    x, unbatched = _batched(input, 5, op, "(N, C, D, H, W)")
    if weight.ndim != 5:
        raise ShapeError(f"{op}: weight must be 5-d (in_channels, out_channels/groups, kd, kh, kw), "
                         f"got {shape_str(weight.shape)}")
    check_float_inputs(op, x, weight, bias)
    stride = ntuple(stride, 3, "stride", op)
    dilation = ntuple(dilation, 3, "dilation", op)
    padding = ntuple(padding, 3, "padding", op, minimum=0)
    output_padding = ntuple(output_padding, 3, "output_padding", op, minimum=0)
    if x.shape[1] != weight.shape[0]:
        raise ShapeError(f"{op}: input has {x.shape[1]} channels, weight {shape_str(weight.shape)} expects "
                         f"{weight.shape[0]}")
    N, C, D = x.shape[:3]
    sd, dd, pd, kd = stride[0], dilation[0], padding[0], weight.shape[2]
    Do = (D - 1) * sd - 2 * pd + dd * (kd - 1) + output_padding[0] + 1
    if Do < 1:
        raise ShapeError(f"{op}: input {shape_str(input.shape)} gives an empty output depth; use less padding")
    planes = reshape(permute(x, (0, 2, 1, 3, 4)), (N * D, C) + tuple(x.shape[3:]))
    y = None
    for k in range(kd):
        part = conv_transpose2d(planes, weight[:, :, k], None, stride[1:], padding[1:], output_padding[1:], groups,
                                dilation[1:])
        part = reshape(part, (N, D) + tuple(part.shape[1:]))  # (N, D, C_out, Ho, Wo)
        q = np.arange(Do) + pd - k * dd  # the input depth d with d sd = q, if any
        source = np.where((q % sd == 0) & (q >= 0) & (q // sd < D), q // sd, D)
        zeros = Tensor(np.zeros((N, 1) + tuple(part.shape[2:]), part.data.dtype))
        spread = index_select(cat([part, zeros], 1), 1, source)
        y = spread if y is None else y + spread
    y = permute(y, (0, 2, 1, 3, 4))
    if bias is not None:
        y = y + reshape(bias, (bias.shape[0], 1, 1, 1))
    return _unbatch(y, unbatched)


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:
    """1-D convolution in time-batch-channel layout: input (T, B, C_in), weight (k, C_in, C_out), bias (C_out,)
    -> (T + 2 pad - k + 1, B, C_out)."""
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(f"conv_tbc: expected input (T, B, C_in) and weight (k, C_in, C_out), got "
                         f"{shape_str(input.shape)} and {shape_str(weight.shape)}")
    y = conv1d(permute(input, (1, 2, 0)), permute(weight, (2, 1, 0)), bias, padding=pad)
    return permute(y, (2, 0, 1))
