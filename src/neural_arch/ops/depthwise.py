"""Depthwise 2-d convolution: ``groups == in_channels == out_channels``, one k x k filter per channel.

``conv2d`` sends such calls here (one marked line in its dispatch); the
arithmetic lives in :mod:`neural_arch.backend.kernels.depthwise` (the numba kernel and its NumPy twin;
``backend.kernels`` decides which runs).
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import LOWER
from neural_arch.autograd.function import Function
from neural_arch.backend.kernels.depthwise import depthwise_backward, depthwise_forward

__all__ = ["DepthwiseConv2d", "is_depthwise"]


def is_depthwise(x_shape, w_shape, groups: int) -> bool:
    """True for a conv whose every channel has its own single filter (weight (C, 1, kh, kw), groups = C)."""
    return groups > 1 and x_shape[1] == groups == w_shape[0] and w_shape[1] == 1


class DepthwiseConv2d(Function):
    """y[n, c] = b[c] + sum_{i,j} w[c, 0, i, j] xp[n, c, p s + i d, q s + j d]   (xp: x zero-padded)

        dx = (sum over taps of w[c, i, j] gy scattered to the tapped positions), cropped to x
        dw[c, 0, i, j] = sum_{n,p,q} gy[n, c, p, q] xp[n, c, p s + i d, q s + j d]
        db[c] = sum_{n,p,q} gy[n, c, p, q]
    """

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
        top, bottom, left, right = pads
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(pads) else x
        kh, kw = w.shape[2:]
        ho = (xp.shape[2] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
        wo = (xp.shape[3] - (kw - 1) * dilation[1] - 1) // stride[1] + 1
        filters = w.reshape(w.shape[0], kh, kw)
        y = depthwise_forward(xp, filters, (ho, wo), stride, dilation)
        if b is not None:
            y += b[:, None, None]
        if True in ctx.needs_input_grad:
            ctx.save_for_backward(xp, filters)
            ctx.geom = (x.shape, w.shape, stride, pads, dilation)
        return y

    @staticmethod
    def backward(ctx, grad):
        xp, filters = ctx.saved_tensors
        xshape, wshape, stride, pads, dilation = ctx.geom
        need = ctx.needs_input_grad
        gxp, gw = depthwise_backward(grad, xp, filters, stride, dilation, need[0], need[1])
        gx = None if gxp is None else gxp[:, :, pads[0]:pads[0] + xshape[2], pads[2]:pads[2] + xshape[3]]
        gw = None if gw is None else gw.reshape(wshape)
        if len(need) == 3:
            return gx, gw, (grad.sum(axis=(0, 2, 3)) if need[2] else None)
        return gx, gw
