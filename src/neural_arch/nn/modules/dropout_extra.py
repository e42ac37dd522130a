"""``AlphaDropout``, ``FeatureAlphaDropout`` (for SELU networks), ``Dropout1d`` and ``Dropout3d`` (whole channels)."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.dropout import _DropoutNd

__all__ = ["AlphaDropout", "Dropout1d", "Dropout3d", "FeatureAlphaDropout"]


class AlphaDropout(_DropoutNd):
    """Dropout that keeps a SELU network's mean and variance (training only)."""

    _dropout = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels (training only)."""

    _dropout = staticmethod(F.feature_alpha_dropout)


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` with probability p (training only)."""

    _dropout = staticmethod(F.dropout1d)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` with probability p (training only)."""

    _dropout = staticmethod(F.dropout3d)
