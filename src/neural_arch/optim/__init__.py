"""Layer 4: optimizers and learning-rate schedulers (being written)."""
