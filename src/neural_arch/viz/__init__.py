"""Layer 7: what explains a model: attention plots (needs matplotlib: the ``viz`` extra) and ``summary``."""

from neural_arch.viz.attention import rollout_overlay, save_attention_rollout
from neural_arch.viz.summary import ModelSummary, summary

__all__ = ["ModelSummary", "rollout_overlay", "save_attention_rollout", "summary"]
