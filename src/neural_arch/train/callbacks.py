"""Callbacks for :class:`~neural_arch.train.Trainer`: stopping early, keeping the best checkpoints, monitors, progress.

- ``Callback``: the hooks, each a no-op; subclass it and override what you need.
- ``EarlyStopping``: stop when a validation metric stops improving.
- ``ModelCheckpoint``: keep the best ``save_top_k`` checkpoints by a validation metric (or the
  latest ones every ``every_n_steps``), and ``last.safetensors``.
- ``LearningRateMonitor``, ``GradientNormMonitor``: add ``lr_group_<i>`` / ``grad_norm`` to each
  step's metrics, which the loggers (:mod:`neural_arch.train.loggers`) then write.
- ``ProgressBar``: a tqdm bar with the loss, the learning rate and the throughput.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from neural_arch.errors import ConfigError
from neural_arch.nn.utils import get_total_norm

MODES = ("min", "max")


class Callback:
    """The hooks the trainer calls, in this order; every one is optional.

    ``on_train_start(trainer)``; per step ``on_before_optimizer_step(trainer)`` (gradients ready,
    not yet applied) and ``on_step_end(trainer, metrics)`` (metrics: loss, lr, items, seconds and
    ``trainer.step_metrics``); ``on_skipped_step(trainer, reason)`` for a non-finite step skipped;
    ``on_eval_end(trainer, metrics)``; ``on_checkpoint(trainer, path)``; ``on_interrupt(trainer)``
    at SIGINT/SIGTERM; ``on_train_end(trainer)`` (also after an exception). Set
    ``trainer.should_stop = True`` to end training after the current step.
    """

    def on_train_start(self, trainer) -> None: ...
    def on_before_optimizer_step(self, trainer) -> None: ...
    def on_step_end(self, trainer, metrics: dict) -> None: ...
    def on_skipped_step(self, trainer, reason: str) -> None: ...
    def on_eval_end(self, trainer, metrics: dict) -> None: ...
    def on_checkpoint(self, trainer, path) -> None: ...
    def on_interrupt(self, trainer) -> None: ...
    def on_train_end(self, trainer) -> None: ...


def _check_mode(name: str, mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"{name}: mode={mode!r} is not one of min, max")


def _better(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:
        return math.isfinite(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when the validation metric ``monitor`` has not improved by ``min_delta`` for ``patience`` evaluations.

    ``mode="min"`` for losses, ``"max"`` for accuracies. After a stop, ``stopped_step`` holds the step.
    """

    def __init__(self, monitor: str = "loss", patience: int = 3, mode: str = "min", min_delta: float = 0.0):
        _check_mode("EarlyStopping", mode)
        if patience < 1:
            raise ConfigError(f"EarlyStopping: patience must be >= 1 (got {patience})")
        self.monitor, self.patience, self.mode, self.min_delta = monitor, patience, mode, abs(min_delta)
        self.best: float | None = None
        self.wait = 0
        self.stopped_step: int | None = None

    def on_eval_end(self, trainer, metrics: dict) -> None:
        if self.monitor not in metrics:
            raise ConfigError(f"EarlyStopping: monitor={self.monitor!r} is not among the validation metrics "
                              f"({', '.join(metrics)})")
        value = float(metrics[self.monitor])
        if _better(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.should_stop = True
            self.stopped_step = trainer.step


class ModelCheckpoint(Callback):
    """Keep the best ``save_top_k`` checkpoints by the validation metric ``monitor`` (``mode`` min or max).

    Files go to ``dirpath`` (default ``run_dir/checkpoints``) as ``step=<N>-<monitor>=<value>.safetensors``;
    a worse one is deleted when a better one arrives. ``save_top_k=-1`` keeps all, 0 none.
    ``every_n_steps``: also save every N steps (with ``monitor=None``: only then, keeping the latest k).
    ``save_last``: each save also refreshes ``last.safetensors``. ``best_model_path`` /
    ``best_model_score`` name the best so far.
    """

    def __init__(self, dirpath=None, monitor: str | None = "loss", mode: str = "min", save_top_k: int = 1,
                 save_last: bool = True, every_n_steps: int | None = None):
        _check_mode("ModelCheckpoint", mode)
        if monitor is None and not every_n_steps:
            raise ConfigError("ModelCheckpoint: give a monitor, or every_n_steps to save on a schedule")
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.monitor, self.mode, self.save_top_k = monitor, mode, save_top_k
        self.save_last, self.every_n_steps = save_last, every_n_steps
        self.kept: dict[Path, float] = {}  # path -> score (the step, when saving on a schedule only)
        self.best_model_path: Path | None = None
        self.best_model_score: float | None = None

    def _dir(self, trainer) -> Path:
        if self.dirpath is None and trainer.run_dir is None:
            raise ConfigError("ModelCheckpoint: give dirpath=..., or a run_dir to the Trainer")
        return self.dirpath or trainer.run_dir / "checkpoints"

    def on_eval_end(self, trainer, metrics: dict) -> None:
        if self.monitor is None or trainer.step == 0:
            return
        if self.monitor not in metrics:
            raise ConfigError(f"ModelCheckpoint: monitor={self.monitor!r} is not among the validation metrics "
                              f"({', '.join(metrics)})")
        self._consider(trainer, float(metrics[self.monitor]), self.mode,
                       f"step={trainer.step}-{self.monitor}={float(metrics[self.monitor]):.4f}")

    def on_step_end(self, trainer, metrics: dict) -> None:
        if not self.every_n_steps or trainer.step % self.every_n_steps:
            return
        if self.monitor is None:
            self._consider(trainer, trainer.step, "max", f"step={trainer.step}")
        elif self.save_last:
            trainer.save_checkpoint(self._dir(trainer) / "last.safetensors")

    def _consider(self, trainer, score: float, mode: str, stem: str) -> None:
        if self.save_top_k == 0 or not math.isfinite(score):
            return
        full = self.save_top_k > 0 and len(self.kept) >= self.save_top_k
        worst = (max if mode == "min" else min)(self.kept, key=self.kept.get) if self.kept else None
        if full and not _better(score, self.kept[worst], mode):
            return
        path = trainer.save_checkpoint(self._dir(trainer) / f"{stem}.safetensors")
        self.kept[path] = score
        if full:
            del self.kept[worst]
            worst.unlink(missing_ok=True)
        best = (min if mode == "min" else max)(self.kept, key=self.kept.get)
        self.best_model_path, self.best_model_score = best, self.kept[best]
        if self.save_last:
            trainer.save_checkpoint(self._dir(trainer) / "last.safetensors")


class LearningRateMonitor(Callback):
    """Log the learning rate of every parameter group each step, as ``lr_group_<i>``."""

    def on_before_optimizer_step(self, trainer) -> None:
        for i, group in enumerate(trainer.optimizer.param_groups):
            trainer.step_metrics[f"lr_group_{i}"] = float(group["lr"])


class GradientNormMonitor(Callback):
    """Log the global ``norm_type`` norm of the gradients (before clipping) every ``every_n_steps``, as
    ``grad_norm``."""

    def __init__(self, norm_type: float = 2.0, every_n_steps: int = 1):
        self.norm_type, self.every_n_steps = norm_type, every_n_steps

    def on_before_optimizer_step(self, trainer) -> None:
        if (trainer.step + 1) % self.every_n_steps or "grad_norm" in trainer.step_metrics:
            return  # grad_norm is already there when the trainer clipped
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        trainer.step_metrics["grad_norm"] = float(get_total_norm(grads, self.norm_type).item()) if grads else 0.0


class ProgressBar(Callback):
    """A tqdm bar over steps with the loss, the learning rate and the throughput; evaluations printed above it."""

    def __init__(self, enabled: bool = True, file=None, copy=None):
        self.enabled = enabled
        self.file = file or sys.stderr
        self.copy = copy  # also hand every printed line to copy(text), e.g. a console log
        self.bar = None

    def on_train_start(self, trainer) -> None:
        if not self.enabled:
            return
        self.bar = tqdm(total=trainer.max_steps, initial=trainer.step, unit="step", dynamic_ncols=True,
                        file=self.file, desc="train")
        self.items = 0
        self.start = time.perf_counter()

    def on_step_end(self, trainer, metrics: dict) -> None:
        if self.bar is None:
            return
        self.items += metrics["items"]
        self.bar.update(1)
        if trainer.step % 5 == 0 or trainer.step == trainer.max_steps:
            rate = self.items / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"loss {metrics['loss']:.4f}, lr {metrics['lr']:.2e}, "
                                     f"{rate:,.0f} {trainer.task.unit}/s", refresh=False)

    def on_skipped_step(self, trainer, reason: str) -> None:
        self.write(f"step {trainer.step + 1} skipped: {reason} ({trainer.skipped_steps} skipped so far)")

    def on_eval_end(self, trainer, metrics: dict) -> None:
        self.write(f"step {trainer.step:>6}: "
                   + ", ".join(f"val {k} {format_metric(k, v)}" for k, v in metrics.items()))

    def on_checkpoint(self, trainer, path) -> None:
        if trainer.interrupted or trainer.stop_signal is not None:
            self.write(f"checkpoint saved to {path} (resume with --resume {path})")

    def on_interrupt(self, trainer) -> None:
        self.write("interrupted: finishing this step and saving a checkpoint (a second signal aborts)")

    def on_train_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def write(self, text: str) -> None:
        if self.copy is not None:
            self.copy(text)
        if self.bar is not None:
            self.bar.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)


def format_metric(key: str, value: float) -> str:
    """Accuracies as percentages, everything else with four decimals."""
    return f"{100 * value:.2f}%" if key in ("accuracy", "top5", "f1_macro") else f"{value:.4f}"
