"""Training checkpoints: everything needed to resume a run bit for bit.

One safetensors file (written by :func:`neural_arch.io.save`, so atomically
and with a checksum) holding::

    format, version     "neural-arch-checkpoint", 1
    step                optimizer steps taken so far
    model               model.state_dict()
    optimizer           optimizer.state_dict()       (moments, step counts, param groups)
    scheduler           scheduler.state_dict()       (or None)
    rng                 {"default": state of na's default generator}  (dropout, init)
    data                the data loader's state (its shuffling generator, batches consumed)
    metadata            anything JSON-like the user adds (config, metrics, ...)

Resuming restores all of it, so N steps + resume + N steps equals 2N steps
exactly (tests/io/test_resume.py checks this with dropout and shuffling on).
"""

from __future__ import annotations

import os
from pathlib import Path

from neural_arch.backend.random import default_generator
from neural_arch.errors import CheckpointError, NeuralArchError, shape_str
from neural_arch.io.serialization import load, save

CHECKPOINT_FORMAT = "neural-arch-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, model, optimizer=None, scheduler=None, *, step: int = 0,
                    data_state: dict | None = None, metadata: dict | None = None) -> Path:
    """Write a training checkpoint to ``path`` atomically; see the module docstring for its contents."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": int(step),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": {"default": default_generator.get_state()},
        "data": data_state,
        "metadata": metadata or {},
    }
    return save(state, path)


def load_checkpoint(path: str | os.PathLike, model=None, optimizer=None, scheduler=None, *,
                    strict: bool = True, restore_rng: bool = True) -> dict:
    """Read a checkpoint and restore it into whatever objects are given; return its contents.

    ``model``/``optimizer``/``scheduler`` get their ``load_state_dict``; the
    default generator gets its state back unless ``restore_rng=False``. A file
    written by ``na.save(model.state_dict(), path)`` loads too (model only).

    Raises ``CheckpointError`` for a missing, truncated or damaged file, and for
    one that does not fit the model (names the missing, unexpected and
    wrongly shaped entries).
    """
    source = str(path)
    ckpt = load(path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        # A bare state dict: weights only, e.g. na.save(model.state_dict(), path)
        ckpt = {"format": None, "step": 0, "model": ckpt, "optimizer": None, "scheduler": None,
                "rng": None, "data": None, "metadata": {}}
    elif ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"load_checkpoint: '{source}' has checkpoint version {ckpt.get('version')}, this "
                              f"neural-arch reads version {CHECKPOINT_VERSION}")
    if model is not None:
        check_state_dict(model.state_dict(), ckpt["model"], source, strict=strict)
        _restore(model, ckpt["model"], "model", source, strict=strict)
    if optimizer is not None:
        if ckpt["optimizer"] is None:
            raise CheckpointError(f"load_checkpoint: '{source}' holds no optimizer state (it holds weights only); "
                                  "load it without an optimizer, or resume from a training checkpoint")
        _restore(optimizer, ckpt["optimizer"], "optimizer", source)
    if scheduler is not None and ckpt["scheduler"] is not None:
        _restore(scheduler, ckpt["scheduler"], "scheduler", source)
    if restore_rng and ckpt.get("rng"):
        default_generator.set_state(ckpt["rng"]["default"])
    return ckpt


def check_state_dict(expected: dict, got: dict, source: str, strict: bool = True) -> None:
    """Raise ``CheckpointError`` naming every key that is missing, unexpected or of the wrong shape."""
    if not isinstance(got, dict):
        raise CheckpointError(f"load_checkpoint: the model entry of '{source}' is a {type(got).__name__}, "
                              "not a state dict")
    problems = []
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if strict and missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    for k in expected:
        if k in got and hasattr(got[k], "shape") and tuple(got[k].shape) != tuple(expected[k].shape):
            problems.append(f"'{k}' has shape {shape_str(got[k].shape)} in the file but "
                            f"{shape_str(expected[k].shape)} in the model")
    if problems:
        raise CheckpointError(f"load_checkpoint: '{source}' does not fit this model: " + "; ".join(problems)
                              + ". Was it written for another model or config?")


def _restore(obj, state, what: str, source: str, **kwargs) -> None:
    try:
        obj.load_state_dict(state, **kwargs)
    except NeuralArchError as e:
        raise CheckpointError(f"load_checkpoint: the {what} state in '{source}' does not fit: {e}") from e
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(f"load_checkpoint: the {what} state in '{source}' does not fit "
                              f"({type(e).__name__}: {e}); was it written for another model or optimizer?") from e
