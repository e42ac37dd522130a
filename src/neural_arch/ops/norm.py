"""Normalisation: layer_norm, rms_norm, batch_norm, group_norm, instance_norm.

Three Functions: ``LayerNorm`` and ``RMSNorm`` normalise each row of trailing ``d`` elements,
``ChannelNorm`` normalises blocks of an (N, C, ...) input with a per-channel affine map:

    batch_norm     statistics per channel, over the batch and spatial dims
    group_norm     statistics per (sample, group of C / G channels), over the group and spatial dims
    instance_norm  group_norm with G = C

The arithmetic is in ``backend.kernels.norm`` (a numba kernel for float32, its NumPy twin
otherwise). batch_norm and instance_norm with given statistics are an affine map of tensors.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.kernels import norm as kern
from neural_arch.backend.kernels.half import convert
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops._operands import floating

__all__ = ["layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm"]


def _in_shape(a, shape):
    """``a`` with ``shape``; the array itself when it already has it (a fresh array becomes a leaf's
    ``.grad`` without the engine copying it)."""
    return a if a.shape == tuple(shape) else a.reshape(shape)


class LayerNorm(Function):
    """Per row of the trailing ``d`` elements, r = 1 / sqrt(var + eps) (biased variance):
        y = (x - mean) r w + b
        dL/dx = r (gw - mean(gw) - xhat mean(gw xhat)),  dL/dw = sum_rows g xhat,  dL/db = sum_rows g
    with xhat = (x - mean) r and gw = g w. Half inputs go to the kernels as they are (they compute in
    float32 and round y and dL/dx once); dL/dw and dL/db, summed in float32, are rounded to w's dtype."""

    half = None  # the kernels read and write bfloat16 (float16: their twins, in float32)

    @staticmethod
    def forward(ctx, x, *affine, d, eps, has_w, has_b):
        x2 = x.reshape(-1, d)
        w = affine[0].reshape(-1) if has_w else np.ones(d, x.dtype)
        b = affine[-1].reshape(-1) if has_b else np.zeros(d, x.dtype)
        y, mean, rstd = kern.layer_norm_forward(x2, w, b, eps)
        ctx.save_for_backward(x2, w, mean, rstd)
        ctx.shape, ctx.has_w, ctx.has_b, ctx.w_shape = x.shape, has_w, has_b, affine[0].shape if has_w else (d,)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x2, w, mean, rstd = ctx.saved_tensors
        dx, dw, db = kern.layer_norm_backward(grad.reshape(x2.shape), x2, w, mean, rstd)
        if dw.dtype != w.dtype:  # half parameters: the float32 sums rounded once
            dw, db = convert(dw, w.dtype), convert(db, w.dtype)
        out = [dx.reshape(ctx.shape)]
        if ctx.has_w:
            out.append(_in_shape(dw, ctx.w_shape))
        if ctx.has_b:
            out.append(_in_shape(db, ctx.w_shape))
        return tuple(out)


class RMSNorm(Function):
    """Per row of the trailing ``d`` elements, r = 1 / sqrt(mean(x^2) + eps):
        y = x r w,   dL/dx = r (gw - xhat mean(gw xhat)),   dL/dw = sum_rows g xhat   (xhat = x r, gw = g w)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, *w, d, eps):
        x2 = x.reshape(-1, d)
        wf = w[0].reshape(-1) if w else np.ones(d, x.dtype)
        y, rstd = kern.rms_norm_forward(x2, wf, eps)
        ctx.save_for_backward(x2, wf, rstd)
        ctx.shape, ctx.has_w, ctx.w_shape = x.shape, bool(w), w[0].shape if w else None
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x2, w, rstd = ctx.saved_tensors
        dx, dw = kern.rms_norm_backward(grad.reshape(x2.shape), x2, w, rstd)
        return (dx.reshape(ctx.shape), _in_shape(dw, ctx.w_shape)) if ctx.has_w else dx.reshape(ctx.shape)


class ChannelNorm(Function):
    """batch_norm (``groups`` None: statistics per channel) and group_norm (per sample and group) of an
    (N, C, ...) x, with per-channel w and b. Over each block's elements, r = 1 / sqrt(var + eps):
        y = (x - mean) r w_c + b_c
        dL/dx = r (gw - mean(gw) - xhat mean(gw xhat)),  dL/dw_c = sum g xhat,  dL/db_c = sum g
    (sums over channel c's elements). ``running=(running_mean, running_var, momentum, count)`` updates
    those arrays in place with the batch mean and the *unbiased* variance, averaged over the samples,
    and adds one to the batch counter ``count`` (a 0-d Tensor or array, or None); momentum None: 1 / count."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, *affine, groups, eps, has_w, has_b, running=None):
        n, c = x.shape[:2]
        x = np.ascontiguousarray(x)
        w = kern.per_block(affine[0].reshape(-1) if has_w else np.ones(c, x.dtype), groups, n)
        b = kern.per_block(affine[-1].reshape(-1) if has_b else np.zeros(c, x.dtype), groups, n)
        x4 = kern.channel_blocks(x, groups)
        y, mean, var, rstd = kern.channel_norm_forward(x4, w, b, eps)
        if running is not None:
            _update_running(running, mean, var, x.size // x4.shape[1])
        ctx.save_for_backward(x4, w, mean, rstd)
        ctx.shape, ctx.groups, ctx.has_w, ctx.has_b = x.shape, groups, has_w, has_b
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x4, w, mean, rstd = ctx.saved_tensors
        dx, dw, db = kern.channel_norm_backward(grad.reshape(x4.shape), x4, w, mean, rstd)
        out = [dx.reshape(ctx.shape)]
        n = ctx.shape[0]
        for wanted, sums in ((ctx.has_w, dw), (ctx.has_b, db)):
            if wanted:  # per channel: batch_norm's (C, 1) as it is, group_norm's (N G, C / G) summed over N
                out.append(sums.reshape(-1) if ctx.groups is None else sums.reshape(n, -1).sum(axis=0))
        return tuple(out)


def _update_running(running, mu, var, n):
    rm, rv, momentum, count = running
    if count is not None:  # the module's num_batches_tracked, counted here so that a replay counts too
        count = count.data if isinstance(count, Tensor) else count
        count += 1
        if momentum is None:
            momentum = 1.0 / float(count)
    c = rm.size if rm is not None else rv.size
    if rm is not None:
        rm *= 1 - momentum
        rm += momentum * mu.reshape(-1, c).mean(axis=0).astype(rm.dtype, copy=False)
    if rv is not None:
        unbiased = var.reshape(-1, c).mean(axis=0) * (n / max(n - 1, 1))
        rv *= 1 - momentum
        rv += momentum * unbiased.astype(rv.dtype, copy=False)


# -- helpers ---------------------------------------------------------------------------------------------
def _param(p, shape, op, name, dtype):
    """Check an affine parameter's shape; cast it to the input's dtype."""
    if p is None:
        return None
    if tuple(p.shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} must have shape {shape_str(shape)}, got {shape_str(p.shape)}")
    return p if p.dtype == dtype else p.to(dtype)


def _channel_norm(x, w, b, groups, eps, running=None):
    affine = tuple(t for t in (w, b) if t is not None)
    return ChannelNorm.apply(x, *affine, groups=groups, eps=eps, has_w=w is not None, has_b=b is not None,
                             running=running)


def _with_stats(x, w, b, mean, var, eps):
    """(x - mean) / sqrt(var + eps) w + b with given per-channel statistics (batch_norm and instance_norm
    in eval): an affine map, differentiated by the elementwise ops."""
    view = (1, -1) + (1,) * (x.data.ndim - 2)
    dt = x.data.dtype
    y = (x - Tensor._wrap(mean.reshape(view).astype(dt, copy=False))) * Tensor._wrap(
        (1 / np.sqrt(var.astype(dt) + eps)).reshape(view))
    if w is not None:
        y = y * w.reshape(view)
    return y + b.reshape(view) if b is not None else y


def _channel_args(input, op, weight, bias, running_mean=None, running_var=None) -> tuple:
    """(x, C, weight, bias, running_mean, running_var) of an (N, C, ...) input: each parameter checked to have one
    entry per channel, the affine ones cast to x's dtype, the statistics as arrays (None where not given)."""
    x = floating(input, op)
    if x.data.ndim < 2:
        raise ShapeError(f"{op}: expected input of shape (N, C, ...), got {shape_str(x.shape)}")
    c = x.data.shape[1]
    stats = [None if t is None else t.data if isinstance(t, Tensor) else t for t in (running_mean, running_var)]
    for name, arr in zip(("running_mean", "running_var"), stats):
        if arr is not None and arr.shape != (c,):
            raise ShapeError(f"{op}: {name} must have shape ({c},) (one per channel), got {shape_str(arr.shape)}")
    return x, c, _param(weight, (c,), op, "weight", x.dtype), _param(bias, (c,), op, "bias", x.dtype), *stats


def _trailing(x, normalized_shape, op):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or x.data.ndim < k or x.data.shape[-k:] != ns:
        raise ShapeError(f"{op}: normalized_shape {ns} must match the trailing dims of the input "
                         f"{shape_str(x.shape)}")
    return ns


# -- the functional API ------------------------------------------------------------------------------------
def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims, then ``* weight + bias``."""
    x = floating(input, "layer_norm")
    ns = _trailing(x, normalized_shape, "layer_norm")
    w = _param(weight, ns, "layer_norm", "weight", x.dtype)
    b = _param(bias, ns, "layer_norm", "bias", x.dtype)
    affine = tuple(t for t in (w, b) if t is not None)
    return LayerNorm.apply(x, *affine, d=math.prod(ns), eps=eps, has_w=w is not None, has_b=b is not None)


def rms_norm(input: Tensor, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims; ``eps=None`` means the
    machine epsilon of the input's dtype, as torch.nn.functional.rms_norm."""
    x = floating(input, "rms_norm")
    ns = _trailing(x, normalized_shape, "rms_norm")
    if eps is None:
        eps = float(np.finfo(x.data.dtype).eps)
    w = _param(weight, ns, "rms_norm", "weight", x.dtype)
    return RMSNorm.apply(x, *(() if w is None else (w,)), d=math.prod(ns), eps=eps)


def batch_norm(input: Tensor, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5, *, num_batches_tracked=None) -> Tensor:
    """Normalise each channel (dim 1) over the batch and spatial dims.

    ``training=True``: batch statistics; ``running_mean`` / ``running_var`` (if given) are updated
    *in place*: r = (1 - momentum) r + momentum * stat, with the unbiased variance.
    ``training=False``: the running statistics are used.
    ``num_batches_tracked`` (ours; the BatchNorm modules pass their buffer): a 0-d integer counter
    that training adds one to; with ``momentum=None`` the update is the cumulative average
    (momentum = 1 / count), as torch's modules do.
    """
    x, c, w, b, rm, rv = _channel_args(input, "batch_norm", weight, bias, running_mean, running_var)
    if training:
        if x.data.size // c <= 1:
            raise ShapeError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"{shape_str(x.shape)}")
        running = None
        if rm is not None or rv is not None:
            if momentum is None and num_batches_tracked is None:
                raise ConfigError("batch_norm: momentum=None (cumulative average) needs the module's batch "
                                  "count; pass a float momentum")
            # the counter goes in as the buffer Tensor: graph.trace names it (a 0-d array would read as a number)
            running = (rm, rv, momentum, num_batches_tracked)
        return _channel_norm(x, w, b, None, eps, running)
    if rm is None or rv is None:
        raise ConfigError("batch_norm: training=False needs running_mean and running_var")
    return _with_stats(x, w, b, rm, rv, eps)


def instance_norm(input: Tensor, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each (sample, channel) over its spatial dims (group_norm with one channel per group);
    running stats as in batch_norm, averaged over the batch."""
    x, c, w, b, rm, rv = _channel_args(input, "instance_norm", weight, bias, running_mean, running_var)
    if x.data.ndim < 3:
        raise ShapeError(f"instance_norm: expected input of shape (N, C, L, ...), got {shape_str(x.shape)}")
    if use_input_stats:
        if math.prod(x.data.shape[2:]) <= 1:
            raise ShapeError(f"instance_norm: expected more than 1 spatial element per channel, got input "
                             f"{shape_str(x.shape)}")
        running = (rm, rv, momentum, None) if (rm is not None or rv is not None) else None
        return _channel_norm(x, w, b, c, eps, running)
    if rm is None or rv is None:
        raise ConfigError("instance_norm: use_input_stats=False needs running_mean and running_var")
    return _with_stats(x, w, b, rm, rv, eps)


def group_norm(input: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over groups of C / num_groups channels (and all spatial dims)."""
    x, c, w, b, _, _ = _channel_args(input, "group_norm", weight, bias)
    if num_groups <= 0 or c % num_groups:
        raise ShapeError(f"group_norm: {c} channels cannot be split into num_groups={num_groups} groups")
    return _channel_norm(x, w, b, num_groups, eps)
