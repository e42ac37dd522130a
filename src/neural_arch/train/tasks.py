"""What a training step computes, per kind of problem.

A task turns ``(model, batch)`` into the loss to minimise (``loss``) and, at
evaluation, into summed metrics (``evaluate``: sums over the batch, so the
trainer can average over a whole split exactly, whatever the batch sizes).
"""

from __future__ import annotations

import numpy as np

import neural_arch.nn.functional as F


class Classification:
    """``model(x)`` gives logits (B, classes); cross-entropy against labels y (B,); accuracy at evaluation."""

    unit = "samples"

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model, batch) -> dict[str, float]:
        x, y = batch
        logits = model(x)
        n = len(y)
        loss = F.cross_entropy(logits, y, reduction="sum").item()
        correct = int((logits.data.argmax(axis=1) == y.data).sum())
        return {"loss": loss, "accuracy": correct, "count": n}

    def batch_size(self, batch) -> int:
        return len(batch[1])


class LanguageModeling:
    """``model(ids)`` gives next-token logits (B, T, vocab); cross-entropy against the shifted ids (B, T)."""

    unit = "tokens"

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate(self, model, batch) -> dict[str, float]:
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        return {"loss": loss, "count": int(np.prod(y.shape))}

    def batch_size(self, batch) -> int:
        return int(np.prod(batch[1].shape))
