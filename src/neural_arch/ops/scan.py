"""Mamba's two sequence ops: the selective scan and the causal depthwise 1-d convolution.

Both are channels-last, (batch, time, channels), so that the linear layers
around them need no transposes. Each takes an optional state from the past
(no gradient) so that generation can go on one token at a time with a state
whose size does not grow.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import LOWER
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.kernels.scan import scan_backward, scan_forward
from neural_arch.errors import ShapeError, shape_str

__all__ = ["causal_depthwise_conv1d", "selective_scan"]


class SelectiveScan(Function):
    """The selective state-space scan, per batch row b, channel d, state n:

        h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t          y_t = sum_n C_t h_t

    Backward (reverse in time, g_t = dL/dh_t = C_t gy_t + exp(delta_{t+1} A) g_{t+1}):

        dC_t = sum_d gy_t h_t       ddelta_t = sum_n g_t (h_{t-1} exp(delta_t A) A + B_t u_t)
        dA = sum_t g_t h_{t-1} exp(delta_t A) delta_t      dB_t = sum_d g_t delta_t u_t
        du_t = delta_t sum_n g_t B_t

    The arithmetic is in :mod:`neural_arch.backend.kernels.scan` (the numba kernel and its NumPy twin;
    ``backend.kernels`` decides which runs).
    ``state_out`` (a list) receives the last state h_L when given.
    """

    half = "float32"

    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0=None, state_out=None):
        if h0 is None:
            h0 = np.zeros((u.shape[0],) + A.shape, u.dtype)
        y, last = scan_forward(u, delta, A, B, C, h0)
        if state_out is not None:
            state_out.append(last)
        if True in ctx.needs_input_grad:
            ctx.save_for_backward(u, delta, A, B, C)
            ctx.h0 = h0
        return y

    @staticmethod
    def backward(ctx, grad):
        u, delta, A, B, C = ctx.saved_tensors
        return scan_backward(grad, u, delta, A, B, C, ctx.h0)


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, initial_state=None,
                   return_last_state: bool = False):
    """Mamba's scan: u, delta (Bt, L, D); A (D, N); B, C (Bt, L, N) -> y (Bt, L, D).

    ``initial_state`` (Bt, D, N) array: the state left by earlier tokens (zeros
    when None; it gets no gradient). ``return_last_state=True`` returns
    ``(y, last state array)``.
    """
    Bt, L, D = u.shape
    N = A.shape[-1]
    expect = {"delta": (delta.shape, (Bt, L, D)), "A": (A.shape, (D, N)), "B": (B.shape, (Bt, L, N)),
              "C": (C.shape, (Bt, L, N))}
    for name, (got, want) in expect.items():
        if tuple(got) != want:
            raise ShapeError(f"selective_scan: {name} must have shape {shape_str(want)} for u {shape_str(u.shape)} "
                             f"and A (D, N) = {shape_str(A.shape)}, got {shape_str(got)}")
    h0 = None
    if initial_state is not None:
        h0 = np.asarray(getattr(initial_state, "data", initial_state), dtype=u.dtype)
        if h0.shape != (Bt, D, N):
            raise ShapeError(f"selective_scan: initial_state must have shape {shape_str((Bt, D, N))}, "
                             f"got {shape_str(h0.shape)}")
    out = [] if return_last_state else None
    y = SelectiveScan.apply(u, delta, A, B, C, h0=h0, state_out=out)
    return (y, out[0]) if return_last_state else y


class CausalDepthwiseConv1d(Function):
    """Each channel c convolved with its own K taps, looking back only (channels last, x (Bt, L, C)):

        y[b, t, c] = bias[c] + sum_k w[c, k] xp[b, t + k, c]     xp = [prefix (K-1 steps) ; x]

    The prefix is the last K-1 inputs of the earlier tokens (zeros at the start).

        dxp[b, t + k, c] += w[c, k] gy[b, t, c]    (dx: dxp without the prefix)
        dw[c, k] = sum_{b,t} gy[b, t, c] xp[b, t + k, c]          dbias[c] = sum_{b,t} gy[b, t, c]
    """

    half = "float32"
    autocast = LOWER  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, weight, bias, prefix=None):
        Bt, L, Ch = x.shape
        K = weight.shape[1]
        if prefix is None:
            prefix = np.zeros((Bt, K - 1, Ch), x.dtype)
        xp = np.concatenate([prefix, x], axis=1)  # (Bt, L + K - 1, C)
        y = np.broadcast_to(bias, x.shape).copy()
        for k in range(K):  # K is small (4 in Mamba): one multiply-add over the sequence per tap
            y += weight[:, k] * xp[:, k:k + L]
        if True in ctx.needs_input_grad:
            ctx.save_for_backward(xp, weight)
        return y

    @staticmethod
    def backward(ctx, grad):
        xp, weight = ctx.saved_tensors
        K, L = weight.shape[1], grad.shape[1]
        gxp = np.zeros_like(xp)
        dw = np.empty_like(weight)
        for k in range(K):
            gxp[:, k:k + L] += weight[:, k] * grad
            dw[:, k] = np.einsum("blc,blc->c", grad, xp[:, k:k + L])
        dbias = grad.sum(axis=(0, 1)) if ctx.needs_input_grad[2] else None
        return gxp[:, K - 1:], dw, dbias


def causal_depthwise_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, prefix=None) -> Tensor:
    """Causal depthwise conv over time: x (Bt, L, C), weight (C, K) or torch's (C, 1, K), bias (C,).

    ``prefix`` (Bt, K-1, C) array: the last inputs of the earlier tokens (zeros when None; no gradient).
    """
    if weight.ndim == 3:
        weight = weight.reshape(weight.shape[0], weight.shape[2])
    Ch, K = weight.shape
    if x.ndim != 3 or x.shape[2] != Ch:
        raise ShapeError(f"causal_depthwise_conv1d: x must be (batch, time, {Ch}) for a weight of {Ch} channels, "
                         f"got {shape_str(x.shape)}")
    if prefix is not None:
        prefix = np.asarray(getattr(prefix, "data", prefix), dtype=x.dtype)
        if prefix.shape != (x.shape[0], K - 1, Ch):
            raise ShapeError(f"causal_depthwise_conv1d: prefix must be {shape_str((x.shape[0], K - 1, Ch))}, "
                             f"got {shape_str(prefix.shape)}")
    if bias is None:
        bias = Tensor(np.zeros(Ch, x.dtype))
    return CausalDepthwiseConv1d.apply(x, weight, bias, prefix=prefix)
