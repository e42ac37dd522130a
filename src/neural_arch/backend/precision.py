"""``torch.set_float32_matmul_precision``'s setting. It permits (never requires) float32 products in a
lower internal precision; neural-arch's products always run in full float32 ("highest"), which every
setting allows, so the value is kept for ``get_float32_matmul_precision`` and changes no result.
"""

from __future__ import annotations

from neural_arch.errors import ConfigError

_CHOICES = ("highest", "high", "medium")
_precision = "highest"


def set_float32_matmul_precision(precision: str) -> None:
    """Record the permitted float32 matmul precision: "highest", "high" or "medium" (see the module doc)."""
    global _precision
    if precision not in _CHOICES:
        raise ConfigError(f"set_float32_matmul_precision: expected one of {_CHOICES}, got {precision!r}")
    _precision = precision


def get_float32_matmul_precision() -> str:
    """The value last given to ``set_float32_matmul_precision`` ("highest" by default)."""
    return _precision
