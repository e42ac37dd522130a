"""Normalisation: layer_norm, rms_norm, batch_norm, group_norm, instance_norm.

All but rms_norm are one fused ``Normalize`` node: mean and variance over
some axes, then an optional per-element affine map. The axes and the shape
the affine parameters are viewed in are what distinguish them:

    layer_norm     axes = the last len(normalized_shape) dims     w: normalized_shape
    batch_norm     axes = all but the channel dim (1)             w: (1, C, 1, ...)
    instance_norm  axes = the spatial dims (2, ...)               w: (1, C, 1, ...)
    group_norm     x viewed as (N, G, C/G, ...), axes = (2, ...)  w: (1, G, C/G, 1, ...)
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops.fused import FusedChannelNorm, FusedLayerNorm, FusedRMSNorm, kernel_for

__all__ = ["layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm"]


class Normalize(Function):
    """xhat = (x - mean) / sqrt(var + eps)   (mean, biased var over ``axes``),   y = xhat w + b
    With r = 1 / sqrt(var + eps), gh = g w and means taken over ``axes``:
        dL/dx = r (gh - mean(gh) - xhat mean(gh xhat)),   dL/dw = g xhat,   dL/db = g
    (w and b gradients are summed to their shapes by the engine).

    ``stats=(mean, rstd)`` uses given statistics instead (batch_norm in eval): dL/dx = r gh.
    ``running=(running_mean, running_var, momentum)`` updates those arrays in place with the
    batch mean and the *unbiased* variance, averaged over any leading groups (torch's rule).
    """

    @staticmethod
    def forward(ctx, x, *affine, axes, eps, has_w, stats=None, running=None):
        if stats is None:
            mu = x.mean(axis=axes, keepdims=True)
            xhat = x - mu
            var = np.mean(xhat * xhat, axis=axes, keepdims=True)
            rstd = 1 / np.sqrt(var + eps)
            if running is not None:
                _update_running(running, mu, var, math.prod(x.shape[a] for a in axes))
        else:
            mu, rstd = stats
            xhat = x - mu
        xhat *= rstd
        w = affine[0] if has_w else None
        b = affine[-1] if len(affine) - has_w else None
        y = xhat * w if w is not None else xhat.copy() if b is None else xhat
        if b is not None:
            y = y + b
        ctx.save_for_backward(xhat, rstd, w)
        ctx.axes, ctx.fixed, ctx.n_affine = axes, stats is not None, len(affine)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, w = ctx.saved_tensors
        gh = grad if w is None else grad * w
        if ctx.fixed:
            gx = gh * rstd
        else:
            axes = ctx.axes
            gx = gh - gh.mean(axis=axes, keepdims=True)
            gx -= xhat * (gh * xhat).mean(axis=axes, keepdims=True)
            gx *= rstd
        out = [gx]
        need = ctx.needs_input_grad
        if w is not None:
            out.append(grad * xhat if need[1] else None)
        if ctx.n_affine - (w is not None):
            out.append(grad)
        return tuple(out)


def _update_running(running, mu, var, n):
    rm, rv, momentum = running
    c = rm.size if rm is not None else rv.size
    if rm is not None:
        rm *= 1 - momentum
        rm += momentum * mu.reshape(-1, c).mean(axis=0).astype(rm.dtype, copy=False)
    if rv is not None:
        unbiased = var.reshape(-1, c).mean(axis=0) * (n / max(n - 1, 1))
        rv *= 1 - momentum
        rv += momentum * unbiased.astype(rv.dtype, copy=False)


class RMSNorm(Function):
    """y = x r w,   r = 1 / sqrt(mean(x^2) + eps)   (mean over ``axes``)
    With xhat = x r and gh = g w:   dL/dx = r (gh - xhat mean(gh xhat)),   dL/dw = g xhat"""

    @staticmethod
    def forward(ctx, x, *w, axes, eps):
        r = 1 / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + eps)
        xhat = x * r
        w = w[0] if w else None
        ctx.save_for_backward(xhat, r, w)
        ctx.axes = axes
        return xhat * w if w is not None else xhat

    @staticmethod
    def backward(ctx, grad):
        xhat, r, w = ctx.saved_tensors
        gh = grad if w is None else grad * w
        gx = gh - xhat * (gh * xhat).mean(axis=ctx.axes, keepdims=True)
        gx *= r
        return (gx,) if w is None else (gx, grad * xhat if ctx.needs_input_grad[1] else None)


# -- helpers ---------------------------------------------------------------------------------------------
def _float_input(x, op):
    if not isinstance(x, Tensor) or x.data.dtype.kind != "f":
        raise DTypeError(f"{op}: input must be a floating-point Tensor, got "
                         f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}")
    return x


def _param(p, shape, view, op, name, dtype):
    """Check an affine parameter's shape and view it (a differentiable reshape) to broadcast."""
    if p is None:
        return None
    if tuple(p.shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} must have shape {shape_str(shape)}, got {shape_str(p.shape)}")
    if p.dtype != dtype:
        p = p.to(dtype)
    return p.reshape(view) if tuple(view) != tuple(shape) else p


def _apply(x, w, b, axes, eps, stats=None, running=None):
    affine = tuple(t for t in (w, b) if t is not None)
    return Normalize.apply(x, *affine, axes=axes, eps=eps, has_w=w is not None, stats=stats, running=running)


def _fusable(x) -> bool:
    """batch_norm (training) and group_norm of a float32 (N, C, spatial...) input run FusedChannelNorm
    (numba kernels): the NumPy reductions over (0, 2, 3) of an NCHW array were 3.5-5x slower than torch."""
    return x.data.ndim >= 3 and x.data.size > 0 and kernel_for(x.data) is not None


def _channel_norm(x, w, b, groups, eps, running=None):
    affine = tuple(t for t in (w, b) if t is not None)
    return FusedChannelNorm.apply(x, *affine, groups=groups, eps=eps, has_w=w is not None, has_b=b is not None,
                                  running=running)


def _channels(x, op):
    if x.data.ndim < 2:
        raise ShapeError(f"{op}: expected input of shape (N, C, ...), got {shape_str(x.shape)}")
    return x.data.shape[1]


def _stat_array(t, c, op, name):
    if t is None:
        return None
    arr = t.data if isinstance(t, Tensor) else t
    if arr.shape != (c,):
        raise ShapeError(f"{op}: {name} must have shape ({c},) (one per channel), got {shape_str(arr.shape)}")
    return arr


# -- the functional API ------------------------------------------------------------------------------------
def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """Normalise over the last ``len(normalized_shape)`` dims, then ``* weight + bias``."""
    x = _float_input(input, "layer_norm")
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or x.data.ndim < k or x.data.shape[-k:] != ns:
        raise ShapeError(f"layer_norm: normalized_shape {ns} must match the trailing dims of the input "
                         f"{shape_str(x.shape)}")
    w = _param(weight, ns, ns, "layer_norm", "weight", x.dtype)
    b = _param(bias, ns, ns, "layer_norm", "bias", x.dtype)
    affine = tuple(t for t in (w, b) if t is not None)
    if kernel_for(x.data, *(t.data for t in affine)) is not None:
        return FusedLayerNorm.apply(x, *affine, d=math.prod(ns), eps=eps, has_w=w is not None, has_b=b is not None)
    return _apply(x, w, b, tuple(range(x.data.ndim - k, x.data.ndim)), eps)


def rms_norm(input: Tensor, normalized_shape, weight=None, eps: float | None = None) -> Tensor:  # noqa: A002
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims; ``eps=None`` means the
    machine epsilon of the input's dtype, as torch.nn.functional.rms_norm."""
    x = _float_input(input, "rms_norm")
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or x.data.ndim < k or x.data.shape[-k:] != ns:
        raise ShapeError(f"rms_norm: normalized_shape {ns} must match the trailing dims of the input "
                         f"{shape_str(x.shape)}")
    if eps is None:
        eps = float(np.finfo(x.data.dtype).eps)
    w = _param(weight, ns, ns, "rms_norm", "weight", x.dtype)
    axes = tuple(range(x.data.ndim - k, x.data.ndim))
    if kernel_for(x.data, *([w.data] if w is not None else [])) is not None:
        ws = (w,) if w is not None else ()
        return FusedRMSNorm.apply(x, *ws, d=math.prod(ns), eps=eps)
    return RMSNorm.apply(x, w, axes=axes, eps=eps) if w is not None else RMSNorm.apply(x, axes=axes, eps=eps)


def batch_norm(input: Tensor, running_mean, running_var, weight=None, bias=None, training: bool = False,  # noqa: A002
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) over the batch and spatial dims.

    ``training=True``: batch statistics; ``running_mean`` / ``running_var`` (if given) are updated
    *in place*: r = (1 - momentum) r + momentum * stat, with the unbiased variance.
    ``training=False``: the running statistics are used.
    """
    x = _float_input(input, "batch_norm")
    c = _channels(x, "batch_norm")
    rm = _stat_array(running_mean, c, "batch_norm", "running_mean")
    rv = _stat_array(running_var, c, "batch_norm", "running_var")
    view = (1, c) + (1,) * (x.data.ndim - 2)
    w_c = _param(weight, (c,), (c,), "batch_norm", "weight", x.dtype)
    b_c = _param(bias, (c,), (c,), "batch_norm", "bias", x.dtype)
    w, b = (None if t is None else t.reshape(view) for t in (w_c, b_c))
    axes = (0,) + tuple(range(2, x.data.ndim))
    if training:
        if x.data.size // c <= 1:
            raise ShapeError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"{shape_str(x.shape)}")
        running = None
        if rm is not None or rv is not None:
            if momentum is None:
                raise ConfigError("batch_norm: momentum=None (cumulative average) needs the module's batch "
                                  "count; pass a float momentum")
            running = (rm, rv, momentum)
        if _fusable(x):
            return _channel_norm(x, w_c, b_c, None, eps, running)
        return _apply(x, w, b, axes, eps, running=running)
    if rm is None or rv is None:
        raise ConfigError("batch_norm: training=False needs running_mean and running_var")
    dt = x.data.dtype
    stats = (rm.reshape(view).astype(dt, copy=False), (1 / np.sqrt(rv.astype(dt) + eps)).reshape(view))
    return _apply(x, w, b, axes, eps, stats=stats)


def instance_norm(input: Tensor, running_mean=None, running_var=None, weight=None, bias=None,  # noqa: A002
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each (sample, channel) over its spatial dims; running stats as in batch_norm,
    averaged over the batch."""
    x = _float_input(input, "instance_norm")
    c = _channels(x, "instance_norm")
    if x.data.ndim < 3:
        raise ShapeError(f"instance_norm: expected input of shape (N, C, L, ...), got {shape_str(x.shape)}")
    rm = _stat_array(running_mean, c, "instance_norm", "running_mean")
    rv = _stat_array(running_var, c, "instance_norm", "running_var")
    view = (1, c) + (1,) * (x.data.ndim - 2)
    w = _param(weight, (c,), view, "instance_norm", "weight", x.dtype)
    b = _param(bias, (c,), view, "instance_norm", "bias", x.dtype)
    axes = tuple(range(2, x.data.ndim))
    if use_input_stats:
        if math.prod(x.data.shape[2:]) <= 1:
            raise ShapeError(f"instance_norm: expected more than 1 spatial element per channel, got input "
                             f"{shape_str(x.shape)}")
        running = (rm, rv, momentum) if (rm is not None or rv is not None) else None
        return _apply(x, w, b, axes, eps, running=running)
    if rm is None or rv is None:
        raise ConfigError("instance_norm: use_input_stats=False needs running_mean and running_var")
    dt = x.data.dtype
    stats = (rm.reshape(view).astype(dt, copy=False), (1 / np.sqrt(rv.astype(dt) + eps)).reshape(view))
    return _apply(x, w, b, axes, eps, stats=stats)


def group_norm(input: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """Normalise each sample over groups of C / num_groups channels (and all spatial dims)."""
    x = _float_input(input, "group_norm")
    c = _channels(x, "group_norm")
    if num_groups <= 0 or c % num_groups:
        raise ShapeError(f"group_norm: {c} channels cannot be split into num_groups={num_groups} groups")
    n, spatial = x.data.shape[0], x.data.shape[2:]
    g = num_groups
    shape5 = (n, g, c // g) + spatial
    view = (1, g, c // g) + (1,) * len(spatial)
    if _fusable(x):
        return _channel_norm(x, _param(weight, (c,), (c,), "group_norm", "weight", x.dtype),
                             _param(bias, (c,), (c,), "group_norm", "bias", x.dtype), g, eps)
    w = _param(weight, (c,), view, "group_norm", "weight", x.dtype)
    b = _param(bias, (c,), view, "group_norm", "bias", x.dtype)
    y = _apply(x.reshape(shape5), w, b, tuple(range(2, len(shape5))), eps)
    return y.reshape(x.data.shape)
