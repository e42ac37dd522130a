"""``Dropout`` and ``Dropout2d``: active only in training mode (``module.train()``)."""

from __future__ import annotations

from neural_arch.errors import ConfigError
from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module


class _DropoutNd(Module):
    """The dropouts of every kind: ``_dropout`` is the functional op of the subclass (each ignores ``inplace``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ConfigError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return self._dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training only)."""

    _dropout = staticmethod(F.dropout)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` with probability p (training only)."""

    _dropout = staticmethod(F.dropout2d)
