"""Convolution: conv1d, conv2d, conv_transpose2d, and unfold / fold (im2col / col2im).

Every convolution here is im2col + one GEMM over the whole batch (``backend.kernels.conv``
computes it: a numba pipeline for float32, its NumPy twin otherwise):

    cols[(c, i, j), (n, h, w)] = xpad[n, c, h*sh + i*dh, w*sw + j*dw]      (im2col, a copy)
    y[o, (n, h, w)]            = sum_(c,i,j) W[o, (c, i, j)] cols[(c, i, j), (n, h, w)]

Backward:

    dL/dW    = dL/dy cols^T                            (one GEMM; the sum over n is inside it)
    dL/dcols = W^T dL/dy                               (one GEMM)
    dL/dx    = col2im(dL/dcols)                        (the adjoint of the im2col copy)

conv_transpose2d is the adjoint of conv2d: its forward is conv2d's input-gradient
(GEMM then col2im) and its backward is conv2d's forward.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import LOWER
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.kernels import conv as kern
from neural_arch.backend.kernels.conv import col2im, crop_hw, im2col, pad_hw
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops.depthwise import DepthwiseConv2d, is_depthwise  # the depthwise fast path
from neural_arch.ops.shape import reshape

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "unfold", "fold"]


class Conv2d(Function):
    """y[n, o] = b[o] + sum_(c in group(o), i, j) W[o, c, i, j] xpad[n, c, h*sh + i*dh, w*sw + j*dw]

    Backward (cols = im2col(xpad) as (G, C/G*kh*kw, N*Ho*Wo), g = dL/dy as (G, O/G, N*Ho*Wo)):
        dL/dW = g cols^T      dL/dx = crop(col2im(W^T g))      dL/db = sum_(n,h,w) dL/dy

    ``pads`` is (top, bottom, left, right): padding="same" can be asymmetric.
    """

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        ctx.save_for_backward(x, w)
        ctx.geom = (tuple(stride), pads, dilation, groups)
        ctx.kept = {}  # what the kernel prepared from w for backward (the dense method's expanded filter)
        return kern.conv2d_forward(x, w, b, *ctx.geom, ctx.kept)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        gx, gw = kern.conv2d_backward(grad, x, w, *ctx.geom, bool(need[0]), bool(need[1]), ctx.kept)
        if len(need) == 2:
            return gx, gw
        return gx, gw, (grad.sum(axis=(0, 2, 3)) if need[2] else None)


class ConvTranspose2d(Function):
    """The adjoint of conv2d in its input: y = conv2d's dL/dx for an output gradient x (+ b), with W of
    shape (C_in, C_out/G, kh, kw) (conv2d's (O, C/G, kh, kw) read the other way). Hence

        dL/dx = conv2d(dL/dy, W)        dL/dW = conv2d's dL/dW for input dL/dy and output gradient x
        dL/db = sum_(n,h,w) dL/dy
    """

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, out_hw=None):
        pads = (padding[0], padding[0], padding[1], padding[1])
        y_shape = (x.shape[0], w.shape[1] * groups) + tuple(out_hw)
        ctx.save_for_backward(x, w)
        ctx.geom = (tuple(stride), pads, dilation, groups)
        y, _ = kern.conv2d_backward(x, np.broadcast_to(np.zeros((), x.dtype), y_shape), w, *ctx.geom, True, False)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        gx = gw = None
        if need[0]:  # (output_padding can give conv2d a row or column more than x has: cropped)
            gx = np.ascontiguousarray(kern.conv2d_forward(grad, w, None, *ctx.geom)[:, :, : x.shape[2], : x.shape[3]])
        if need[1]:
            gw = kern.conv2d_backward(x, grad, w, *ctx.geom, False, True)[1]
        if len(need) == 2:
            return gx, gw
        return gx, gw, (grad.sum(axis=(0, 2, 3)) if need[2] else None)


class Unfold(Function):
    """y[n, (c, i, j), (h, w)] = xpad[n, c, h*sh + i*dh, w*sw + j*dw]     dL/dx = crop(col2im(dL/dy))"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, kernel, stride, pads, dilation):
        n, c = x.shape[:2]
        xp = pad_hw(x, pads)
        hp, wp = xp.shape[2:]
        ho = (hp - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        wo = (wp - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
        ctx.geom = (x.shape, (hp, wp), (ho, wo), kernel, stride, pads, dilation)
        return im2col(xp, kernel, stride, dilation, (ho, wo)).reshape(n, c * kernel[0] * kernel[1], ho * wo)

    @staticmethod
    def backward(ctx, grad):
        xshape, padded_hw, out_hw, kernel, stride, pads, dilation = ctx.geom
        cols = grad.reshape(xshape[:2] + tuple(kernel) + tuple(out_hw))
        return crop_hw(col2im(cols, padded_hw, stride, dilation), pads, xshape[2:])


class Fold(Function):
    """y = crop(col2im(x)): the sum of overlapping blocks     dL/dx = im2col(pad(dL/dy)) (unfold)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, out_size, kernel, stride, pads, dilation, blocks):
        n, ckk, _ = x.shape
        c = ckk // (kernel[0] * kernel[1])
        padded = (out_size[0] + pads[0] + pads[1], out_size[1] + pads[2] + pads[3])
        ctx.geom = (x.shape, kernel, stride, pads, dilation, blocks)
        full = col2im(x.reshape((n, c) + tuple(kernel) + tuple(blocks)), padded, stride, dilation)
        return crop_hw(full, pads, out_size)

    @staticmethod
    def backward(ctx, grad):
        xshape, kernel, stride, pads, dilation, blocks = ctx.geom
        return im2col(pad_hw(grad, pads), kernel, stride, dilation, blocks).reshape(xshape)


# -- argument handling -----------------------------------------------------------------------------------
def ntuple(value, n: int, name: str, op: str, minimum: int = 1) -> tuple:
    """An int or a sequence of n ints -> a tuple of n ints, each >= minimum."""
    if isinstance(value, Tensor):
        value = value.tolist()
    vals = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(vals) == 1 and n > 1:
        vals = vals * n
    if len(vals) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        raise ConfigError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in vals):
        raise ConfigError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


def check_float_inputs(op: str, *tensors) -> None:
    dtype = tensors[0].data.dtype
    for t in tensors:
        if t is None:
            continue
        if not is_floating(t.data.dtype):
            raise DTypeError(f"{op}: expects floating-point tensors, got {t.dtype}; convert with .float()")
        if t.data.dtype != dtype:
            names = ", ".join(str(u.dtype) for u in tensors if u is not None)
            raise DTypeError(f"{op}: input, weight and bias must share one dtype, got ({names}); "
                             "cast them with .to(dtype)")


def _conv_padding(padding, kernel, dilation, stride, op: str) -> tuple:
    """torch's padding argument -> (top, bottom, left, right) for the spatial dims (H, W)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ConfigError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ConfigError(f"{op}: padding='same' is not supported for strided convolutions "
                              f"(stride={stride}); use stride=1 or an explicit padding")
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]  # torch puts the odd extra pixel at the end
        return tuple(pads)
    ph, pw = ntuple(padding, 2, "padding", op, minimum=0)
    return (ph, ph, pw, pw)


def _batched(x: Tensor, rank: int, op: str, what: str) -> tuple[Tensor, bool]:
    """Accept torch's unbatched inputs (one dim fewer): add the batch dim and say so."""
    nd = x.data.ndim
    if nd == rank - 1:
        return reshape(x, (1,) + x.data.shape), True
    if nd != rank:
        raise ShapeError(f"{op}: expected a {rank - 1}-d (unbatched) or {rank}-d (batched) input {what}, "
                         f"got shape {shape_str(x.shape)}")
    return x, False


def _unbatch(y: Tensor, unbatched: bool) -> Tensor:
    return reshape(y, y.data.shape[1:]) if unbatched else y


def _check_conv_shapes(op, x, weight, bias, groups, transposed=False):
    c = x.data.shape[1]
    ws = weight.data.shape
    if groups < 1:
        raise ConfigError(f"{op}: groups must be >= 1, got {groups}")
    if c % groups:
        raise ShapeError(f"{op}: input channels ({c}) must be divisible by groups ({groups})")
    if transposed:
        if ws[0] != c:
            raise ShapeError(f"{op}: weight {shape_str(ws)} expects {ws[0]} input channels "
                             f"(weight.shape[0]), but the input {shape_str(x.shape)} has {c}")
        out_channels = ws[1] * groups
    else:
        if ws[0] % groups:
            raise ShapeError(f"{op}: out_channels (weight.shape[0] = {ws[0]}) must be divisible by groups ({groups})")
        if ws[1] * groups != c:
            raise ShapeError(f"{op}: weight {shape_str(ws)} with groups={groups} expects {ws[1] * groups} input "
                             f"channels, but the input {shape_str(x.shape)} has {c}")
        out_channels = ws[0]
    if bias is not None and bias.data.shape != (out_channels,):
        raise ShapeError(f"{op}: bias must have shape ({out_channels},), got {shape_str(bias.shape)}")


# -- the functional API ------------------------------------------------------------------------------------
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in torch) of ``(N, C, H, W)`` by ``(O, C/groups, kh, kw)``.

    ``padding``: int, (ph, pw), ``"valid"`` (none) or ``"same"`` (output size = input size; stride 1
    only; an odd total padding puts the extra pixel at the bottom/right, like torch).
    A 3-d ``(C, H, W)`` input is treated as a batch of one and returned without the batch dim.
    """
    op = "conv2d"
    x, unbatched = _batched(input, 4, op, "(N, C, H, W)")
    if weight.data.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-d (out_channels, in_channels/groups, kh, kw), "
                         f"got {shape_str(weight.shape)}")
    check_float_inputs(op, x, weight, bias)
    stride = ntuple(stride, 2, "stride", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    groups = int(groups)
    _check_conv_shapes(op, x, weight, bias, groups)
    kernel = weight.data.shape[2:]
    pads = _conv_padding(padding, kernel, dilation, stride, op)
    hp, wp = x.data.shape[2] + pads[0] + pads[1], x.data.shape[3] + pads[2] + pads[3]
    eff = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    if eff[0] > hp or eff[1] > wp:
        raise ShapeError(f"{op}: kernel {kernel} (dilated to {eff}) is larger than the padded input "
                         f"({hp}, {wp}) of input {shape_str(input.shape)}; pad more or use a smaller kernel")
    args = (x, weight) if bias is None else (x, weight, bias)
    if is_depthwise(x.data.shape, weight.data.shape, groups):  # stream 7: depthwise has its own kernel
        return _unbatch(DepthwiseConv2d.apply(*args, stride=stride, pads=pads, dilation=dilation), unbatched)
    y = Conv2d.apply(*args, stride=stride, pads=pads, dilation=dilation, groups=groups)
    return _unbatch(y, unbatched)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution of ``(N, C, L)`` by ``(O, C/groups, k)``: conv2d on a unit-height image."""
    op = "conv1d"
    x, unbatched = _batched(input, 3, op, "(N, C, L)")
    if weight.data.ndim != 3:
        raise ShapeError(f"{op}: weight must be 3-d (out_channels, in_channels/groups, k), "
                         f"got {shape_str(weight.shape)}")
    s = ntuple(stride, 1, "stride", op)[0]
    d = ntuple(dilation, 1, "dilation", op)[0]
    p = padding if isinstance(padding, str) else ntuple(padding, 1, "padding", op, minimum=0)[0]
    x4 = reshape(x, x.data.shape[:2] + (1, x.data.shape[2]))
    w4 = reshape(weight, weight.data.shape[:2] + (1, weight.data.shape[2]))
    y = conv2d(x4, w4, bias, stride=(1, s), padding=p if isinstance(p, str) else (0, p), dilation=(1, d),
               groups=groups)
    y = reshape(y, y.data.shape[:2] + (y.data.shape[3],))
    return _unbatch(y, unbatched)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input), weight ``(C_in, C_out/groups, kh, kw)``.

    Output size per axis: ``(H - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``.
    """
    op = "conv_transpose2d"
    x, unbatched = _batched(input, 4, op, "(N, C, H, W)")
    if weight.data.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-d (in_channels, out_channels/groups, kh, kw), "
                         f"got {shape_str(weight.shape)}")
    check_float_inputs(op, x, weight, bias)
    stride = ntuple(stride, 2, "stride", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    padding = ntuple(padding, 2, "padding", op, minimum=0)
    output_padding = ntuple(output_padding, 2, "output_padding", op, minimum=0)
    groups = int(groups)
    _check_conv_shapes(op, x, weight, bias, groups, transposed=True)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ConfigError(f"{op}: output_padding {output_padding} must be smaller than stride {stride} "
                              f"or dilation {dilation}")
    kernel = weight.data.shape[2:]
    out_hw = []
    for n_in, k, s, p, d, o in zip(x.data.shape[2:], kernel, stride, padding, dilation, output_padding):
        size = (n_in - 1) * s - 2 * p + d * (k - 1) + o + 1
        if size < 1:
            raise ShapeError(f"{op}: input {shape_str(input.shape)} with kernel {kernel}, stride {stride}, "
                             f"padding {padding} gives an empty output; use less padding")
        out_hw.append(size)
    args = (x, weight) if bias is None else (x, weight, bias)
    y = ConvTranspose2d.apply(*args, stride=stride, padding=padding, dilation=dilation, groups=groups,
                              out_hw=tuple(out_hw))
    return _unbatch(y, unbatched)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col, torch's ``F.unfold``: ``(N, C, H, W)`` -> ``(N, C*kh*kw, L)``, L = number of windows."""
    op = "unfold"
    x, unbatched = _batched(input, 4, op, "(N, C, H, W)")
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    stride = ntuple(stride, 2, "stride", op)
    ph, pw = ntuple(padding, 2, "padding", op, minimum=0)
    h, w = x.data.shape[2] + 2 * ph, x.data.shape[3] + 2 * pw
    if (kernel[0] - 1) * dilation[0] + 1 > h or (kernel[1] - 1) * dilation[1] + 1 > w:
        raise ShapeError(f"{op}: kernel {kernel} with dilation {dilation} does not fit in the padded input "
                         f"({h}, {w}) of {shape_str(input.shape)}")
    y = Unfold.apply(x, kernel=kernel, stride=stride, pads=(ph, ph, pw, pw), dilation=dilation)
    return _unbatch(y, unbatched)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, torch's ``F.fold``: ``(N, C*kh*kw, L)`` -> ``(N, C, H, W)``, summing overlapping blocks."""
    op = "fold"
    x, unbatched = _batched(input, 3, op, "(N, C*kh*kw, L)")
    out_size = ntuple(output_size, 2, "output_size", op)
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    stride = ntuple(stride, 2, "stride", op)
    ph, pw = ntuple(padding, 2, "padding", op, minimum=0)
    blocks = tuple((o + 2 * p - d * (k - 1) - 1) // s + 1
                   for o, p, d, k, s in zip(out_size, (ph, pw), dilation, kernel, stride))
    _, ckk, length = x.data.shape
    kk = kernel[0] * kernel[1]
    if ckk % kk:
        raise ShapeError(f"{op}: input dim 1 ({ckk}) must be divisible by kh*kw = {kk} for kernel {kernel}")
    if min(blocks) < 1 or blocks[0] * blocks[1] != length:
        raise ShapeError(f"{op}: output_size {out_size} with kernel {kernel}, dilation {dilation}, padding "
                         f"{(ph, pw)}, stride {stride} has {blocks[0]}x{blocks[1]} blocks, but the input "
                         f"{shape_str(input.shape)} has L = {length}")
    y = Fold.apply(x, out_size=out_size, kernel=kernel, stride=stride, pads=(ph, ph, pw, pw), dilation=dilation,
                   blocks=blocks)
    return _unbatch(y, unbatched)
