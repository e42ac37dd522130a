"""More normalisation layers: ``BatchNorm3d``, ``SyncBatchNorm`` (one process: BatchNorm),
``InstanceNorm1d`` / ``InstanceNorm3d`` and ``LocalResponseNorm``.

Not here: torch's legacy ``CrossMapLRN2d``, whose sliding channel sum never drops channel 0 (it differs
from LocalResponseNorm beyond the first window).

``SyncBatchNorm`` computes statistics over the local batch: in a single process that is exactly
BatchNorm. Across MPI ranks it does not (yet) all-reduce the statistics; ``convert_sync_batchnorm``
swaps it in for BatchNorm layers keeping their weights and running statistics, as torch.
"""

from __future__ import annotations

from neural_arch.errors import ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module
from neural_arch.nn.modules.normalization import InstanceNorm2d, _BatchNorm

__all__ = ["BatchNorm3d", "InstanceNorm1d", "InstanceNorm3d", "LocalResponseNorm", "SyncBatchNorm"]


class BatchNorm3d(_BatchNorm):
    """Batch norm over ``(N, C, D, H, W)``."""

    def _check_input_dim(self, input) -> None:
        if input.ndim != 5:
            raise ShapeError(f"BatchNorm3d: expected 5D input (N, C, D, H, W), got shape {shape_str(input.shape)}")


class SyncBatchNorm(_BatchNorm):
    """Batch norm over ``(N, C, *)``; ``process_group`` is accepted. In one process it equals BatchNorm
    (the statistics of the local batch; see the module doc)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input) -> None:
        if input.ndim < 2:
            raise ShapeError(f"SyncBatchNorm: expected at least 2D input (N, C, *), got shape {shape_str(input.shape)}")

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm layer replaced by a SyncBatchNorm holding its parameters and buffers."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group)
            for name in ("weight", "bias"):
                setattr(out, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                out.register_buffer(name, getattr(module, name))
            out.train(module.training)
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module


class InstanceNorm1d(InstanceNorm2d):
    """Instance norm over ``(N, C, L)`` (or ``(C, L)``)."""

    _ndim = 3


class InstanceNorm3d(InstanceNorm2d):
    """Instance norm over ``(N, C, D, H, W)`` (or ``(C, D, H, W)``)."""

    _ndim = 5


class LocalResponseNorm(Module):
    """Normalise each element by the squares of its ``size`` neighbouring channels (AlexNet)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
