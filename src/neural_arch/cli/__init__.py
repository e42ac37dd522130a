"""Layer 8: the ``neural-arch`` command (see :mod:`neural_arch.cli.main`)."""

from neural_arch.cli.main import main

__all__ = ["main"]
