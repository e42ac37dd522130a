"""torch's deprecated names, kept so old code runs: ``Container`` and ``NLLLoss2d``."""

from __future__ import annotations

import warnings

from neural_arch.nn.modules.loss import NLLLoss
from neural_arch.nn.modules.module import Module

__all__ = ["Container", "NLLLoss2d"]


class Container(Module):
    """Deprecated in torch (use Module): registers each keyword argument as a sub-module."""

    def __init__(self, **kwargs):
        super().__init__()
        warnings.warn("nn.Container is deprecated. All of its functionality is now implemented in nn.Module. "
                      "Subclass that instead.", stacklevel=2)
        for key, value in kwargs.items():
            self.add_module(key, value)


class NLLLoss2d(NLLLoss):
    """Deprecated in torch: NLLLoss (which takes (N, C, H, W) inputs itself)."""
