"""Layer 4: modules, layers, initialisers (being written)."""

from neural_arch.nn import functional  # noqa: F401
