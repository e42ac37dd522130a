"""What a training step computes, per kind of problem.

A task turns ``(model, batch)`` into the loss to minimise (``loss``) and, at
evaluation, into summed metrics (``evaluate``: sums over the batch, so the
trainer can average over a whole split exactly, whatever the batch sizes).
"""

from __future__ import annotations

import zlib

import numpy as np

import neural_arch as na
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


class MaskedLanguageModeling:
    """BERT's pre-training objective: hide some tokens and predict them from both sides.

    Each token is chosen with probability ``mask_prob`` (BERT: 15%); a chosen token
    is replaced by ``mask_token_id`` 80% of the time, by a random token 10%, and left
    as it is 10%, and the loss is the cross-entropy at the chosen positions only
    (labels -100 elsewhere). Training draws from ``generator``; evaluation draws
    from a generator seeded by the batch's own ids, so every evaluation of the same
    split hides the same tokens and scores are comparable across a run.
    The batch is a language-modelling pair (x, y); only x is used.
    """

    unit = "tokens"

    def __init__(self, mask_token_id: int, vocab_size: int, mask_prob: float = 0.15,
                 generator: na.Generator | None = None):
        self.mask_token_id, self.vocab_size, self.mask_prob = mask_token_id, vocab_size, mask_prob
        self.rng = (generator or na.Generator(0)).np

    def mask(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, labels) for a batch of ids (B, T): inputs with tokens hidden, labels -100 where not chosen."""
        chosen = rng.random(ids.shape) < self.mask_prob
        labels = np.where(chosen, ids, -100)
        action = rng.random(ids.shape)  # < 0.8: mask, 0.8 .. 0.9: random token, >= 0.9: keep
        inputs = np.where(chosen & (action < 0.8), self.mask_token_id, ids)
        random_ids = rng.integers(0, self.vocab_size, ids.shape)
        inputs = np.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
        return inputs.astype(np.int64), labels.astype(np.int64)

    @staticmethod
    def _ids(batch) -> np.ndarray:
        return batch[0].numpy() if hasattr(batch[0], "numpy") else np.asarray(batch[0])

    def _masked_logits(self, model, ids, rng):
        inputs, labels = self.mask(ids, rng)
        logits = model(na.tensor(inputs))
        return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)

    def loss(self, model, batch):
        logits, labels = self._masked_logits(model, self._ids(batch), self.rng)
        return F.cross_entropy(logits, na.tensor(labels), ignore_index=-100)

    def evaluate(self, model, batch) -> dict[str, float]:
        ids = self._ids(batch)
        logits, labels = self._masked_logits(model, ids, np.random.default_rng(zlib.crc32(ids.tobytes())))
        chosen = labels != -100
        loss = F.cross_entropy(logits, na.tensor(labels), ignore_index=-100, reduction="sum").item()
        correct = int((logits.data.argmax(axis=1)[chosen] == labels[chosen]).sum())
        return {"loss": loss, "accuracy": correct, "count": int(chosen.sum())}

    def batch_size(self, batch) -> int:
        return int(np.prod(batch[0].shape))
