"""Layer 5: torch.utils' names. ``na.utils.checkpoint`` (activation checkpointing)."""

from neural_arch.utils import checkpoint

__all__ = ["checkpoint"]
