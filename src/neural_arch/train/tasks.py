"""What a training step computes, per kind of problem: the ``Task`` protocol and three tasks.

A task turns ``(model, batch)`` into the loss to minimise (``loss``, the only
required part) and, at evaluation, into summed metrics (``evaluate``: sums over
the batch plus a ``count``, so the trainer averages over a whole split exactly,
whatever the batch sizes). ``batch_size`` (items in a batch, for throughput) and
``unit`` (what an item is: "samples", "tokens") are optional; :func:`as_task`
fills in the defaults of :class:`Task` for an object that lacks them, and turns
a plain ``loss_fn(model, batch) -> loss`` into a task.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

import neural_arch.nn.functional as F
from neural_arch.backend import Generator
from neural_arch.errors import ConfigError
from neural_arch.ops import tensor


@runtime_checkable
class Task(Protocol):
    """What :class:`~neural_arch.train.Trainer` needs from a task; only ``loss`` is required.

    Subclass it to inherit the defaults, or pass any object with a ``loss`` method
    (the trainer fills in the rest the same way).
    """

    unit: str = "samples"

    def loss(self, model, batch) -> Any:
        """The scalar loss Tensor to minimise for one batch."""
        ...

    def evaluate(self, model, batch) -> dict[str, float]:
        """Summed metrics of one batch and its ``count``; default: the loss times the batch size."""
        n = self.batch_size(batch)
        return {"loss": float(self.loss(model, batch).item()) * n, "count": n}

    def batch_size(self, batch) -> int:
        """Items in ``batch``; default: the length of its first element (or of the batch itself)."""
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        return int(first.shape[0]) if hasattr(first, "shape") else len(first)


class LossFunctionTask(Task):
    """A task from a plain ``loss_fn(model, batch) -> loss``; evaluation averages that loss."""

    def __init__(self, loss_fn: Callable):
        self.loss_fn = loss_fn

    def loss(self, model, batch):
        return self.loss_fn(model, batch)


class _FilledTask(Task):
    """A duck-typed task with :class:`Task`'s defaults for the parts it does not define."""

    def __init__(self, task):
        self.task = task
        self.unit = getattr(task, "unit", "samples")
        self.loss = task.loss
        if callable(getattr(task, "evaluate", None)):
            self.evaluate = task.evaluate
        if callable(getattr(task, "batch_size", None)):
            self.batch_size = task.batch_size


def as_task(task=None, loss_fn: Callable | None = None) -> Task:
    """The task the trainer runs: ``task`` (completed with the defaults) or one made from ``loss_fn``."""
    if (task is None) == (loss_fn is None):
        raise ConfigError("Trainer: give a loss_fn(model, batch) -> loss, or a task with a loss method "
                          "(not both, not neither)")
    if loss_fn is not None:
        if not callable(loss_fn):
            raise ConfigError("Trainer: loss_fn must be callable as loss_fn(model, batch), "
                              f"got {type(loss_fn).__name__}")
        return LossFunctionTask(loss_fn)
    if not callable(getattr(task, "loss", None)):
        raise ConfigError(f"Trainer: the task {type(task).__name__} has no loss(model, batch) method; "
                          "add one (see neural_arch.train.Task) or pass loss_fn=... instead")
    return task if isinstance(task, Task) else _FilledTask(task)


class Classification(Task):
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


class LanguageModeling(Task):
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


class MaskedLanguageModeling(Task):
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
                 generator: Generator | None = None):
        self.mask_token_id, self.vocab_size, self.mask_prob = mask_token_id, vocab_size, mask_prob
        self.rng = (generator or Generator(0)).np

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
        logits = model(tensor(inputs))
        return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)

    def loss(self, model, batch):
        logits, labels = self._masked_logits(model, self._ids(batch), self.rng)
        return F.cross_entropy(logits, tensor(labels), ignore_index=-100)

    def evaluate(self, model, batch) -> dict[str, float]:
        ids = self._ids(batch)
        logits, labels = self._masked_logits(model, ids, np.random.default_rng(zlib.crc32(ids.tobytes())))
        chosen = labels != -100
        loss = F.cross_entropy(logits, tensor(labels), ignore_index=-100, reduction="sum").item()
        correct = int((logits.data.argmax(axis=1)[chosen] == labels[chosen]).sum())
        return {"loss": loss, "accuracy": correct, "count": int(chosen.sum())}

    def batch_size(self, batch) -> int:
        return int(np.prod(batch[0].shape))
