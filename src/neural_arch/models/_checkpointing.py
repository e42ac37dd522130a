"""``gradient_checkpointing_enable()`` / ``gradient_checkpointing_disable()``, Hugging Face's names.

A model's stack of blocks (``GPT2Model.h``, ``BertEncoder.layer``, ...) runs each block through
``autograd.checkpoint.checkpoint`` while its ``gradient_checkpointing`` flag is on and the model trains
(``model.train()``, grad mode on): activations are kept at block boundaries only and recomputed in
backward. Generation (a KV cache) and evaluation run as without it.
"""

from __future__ import annotations

from neural_arch.autograd.checkpoint import checkpoint
from neural_arch.autograd.grad_mode import is_grad_enabled


class GradientCheckpointingMixin:
    """For a model class: the two switches, which set the flag on every submodule that has one."""

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute each block's activations in backward instead of keeping them (saves memory, costs
        one more forward per block). ``gradient_checkpointing_kwargs``: passed to ``checkpoint`` (e.g.
        ``{"preserve_rng_state": False}``; ``use_reentrant`` is accepted, see ``checkpoint``)."""
        self._set_gradient_checkpointing(True, dict(gradient_checkpointing_kwargs or {}))

    def gradient_checkpointing_disable(self) -> None:
        """Keep every activation again (the default)."""
        self._set_gradient_checkpointing(False, {})

    @property
    def is_gradient_checkpointing(self) -> bool:
        """Whether some stack of blocks in the model has checkpointing on (Hugging Face's name)."""
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def _set_gradient_checkpointing(self, on: bool, kwargs: dict) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = on
                module.checkpoint_kwargs = kwargs


def checkpointing(owner) -> bool:
    """Whether ``owner`` (the module that holds a stack of blocks) runs them through ``checkpoint`` now:
    its flag is on, it is training, and grad mode is on."""
    return owner.gradient_checkpointing and owner.training and is_grad_enabled()


__all__ = ["GradientCheckpointingMixin", "checkpoint", "checkpointing"]
