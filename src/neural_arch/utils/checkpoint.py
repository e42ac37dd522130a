"""``torch.utils.checkpoint``'s names: activation checkpointing (the mechanism: ``autograd/checkpoint.py``).

    from neural_arch.utils.checkpoint import checkpoint
    h = checkpoint(block, h, use_reentrant=False)     # block's activations are recomputed in backward
"""

from neural_arch.autograd.checkpoint import checkpoint, checkpoint_sequential

__all__ = ["checkpoint", "checkpoint_sequential"]
