"""Normalisation layers: ``BatchNorm1d/2d``, ``InstanceNorm2d``, ``LayerNorm``, ``RMSNorm``, ``GroupNorm``.

Parameter and buffer names are torch's (``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``), so checkpoints load by name.
"""

from __future__ import annotations

import numbers

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param


def _affine_parameters(module, shape, affine: bool, bias: bool, dtype, device) -> None:
    """Register ``weight`` and ``bias`` of ``shape`` (int or tuple), or None for each one not asked for."""
    shape = (shape,) if isinstance(shape, numbers.Integral) else shape
    module.register_parameter("weight", empty_param(*shape, dtype=dtype, device=device) if affine else None)
    module.register_parameter("bias", empty_param(*shape, dtype=dtype, device=device) if affine and bias else None)


def _reset_affine(module) -> None:
    """The affine gain to ones and the shift to zeros (each where present): the identity transform."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _NormBase(Module):
    """Shared by BatchNorm and InstanceNorm: affine parameters and running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine_parameters(self, num_features, affine, bias, dtype, device)
        if track_running_stats:
            dt = get_default_dtype() if dtype is None else resolve_dtype(dtype)
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.zeros((), dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input) -> None:  # pragma: no cover - overridden
        pass

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel (dim 1), with batch statistics in
    training (and running averages updated: r = (1 - momentum) r + momentum * stat, unbiased var)
    and the running averages in eval mode (unless ``track_running_stats=False``)."""

    def forward(self, input):
        self._check_input_dim(input)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        # the batch counter is counted inside the op (not here), so that a compiled step's replay counts it
        counting = self.training and self.track_running_stats and self.num_batches_tracked is not None
        momentum = self.momentum if self.momentum is not None or counting else 0.0
        return F.batch_norm(input, self.running_mean if keep else None, self.running_var if keep else None,
                            self.weight, self.bias, use_batch_stats, momentum, self.eps,
                            num_batches_tracked=self.num_batches_tracked if counting else None)


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)``."""

    def _check_input_dim(self, input) -> None:
        if input.ndim not in (2, 3):
            raise ShapeError(f"BatchNorm1d: expected 2D or 3D input (N, C[, L]), got shape {shape_str(input.shape)}")


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)``."""

    def _check_input_dim(self, input) -> None:
        if input.ndim != 4:
            raise ShapeError(f"BatchNorm2d: expected 4D input (N, C, H, W), got shape {shape_str(input.shape)}")


class InstanceNorm2d(_NormBase):
    """Normalise each (sample, channel) plane of ``(N, C, H, W)`` (or ``(C, H, W)``) over H and W. Defaults
    as torch: ``affine=False, track_running_stats=False``."""

    _ndim = 4  # the rank of a batched input (InstanceNorm1d: 3, InstanceNorm3d: 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        nd = self._ndim
        if input.ndim not in (nd - 1, nd):
            raise ShapeError(f"{type(self).__name__}: expected {nd - 1}D or {nd}D input, got shape "
                             f"{shape_str(input.shape)}")
        if input.ndim == nd - 1:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        use_input_stats = self.training or not self.track_running_stats
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                               use_input_stats, self.momentum if self.momentum is not None else 0.1, self.eps)


def _normalized_shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` dims: (x - mean) / sqrt(var + eps) * weight + bias.
    ``weight`` starts at ones, ``bias`` at zeros."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype, device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) * weight over the last dims (Zhang & Sennrich, 2019).
    ``eps=None`` uses the input dtype's machine epsilon, as torch does."""

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = empty_param(*self.normalized_shape, dtype=dtype, device=device)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalise each sample over groups of ``num_channels / num_groups`` channels (Wu & He, 2018);
    per-channel affine ``weight`` (ones) and ``bias`` (zeros)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ConfigError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                              f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine_parameters(self, num_channels, affine, bias, dtype, device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
