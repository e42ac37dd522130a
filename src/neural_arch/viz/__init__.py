"""Plots that explain models (needs matplotlib: the ``viz`` extra)."""

from neural_arch.viz.attention import rollout_overlay, save_attention_rollout

__all__ = ["rollout_overlay", "save_attention_rollout"]
