"""``Trainer``: the training loop, with evaluation, checkpoints, resuming and callbacks.

    trainer = Trainer(model, optimizer, train_loader, task=Classification(), val_loader=val_loader,
                      max_steps=5000, eval_every=500, checkpoint_every=1000, run_dir="runs/mine")
    trainer.fit()                   # or trainer.fit(resume_from="runs/mine/checkpoints/last.safetensors")

One step: ``loss = task.loss(model, batch)``, ``zero_grad``, ``backward``,
optional gradient clipping, ``optimizer.step()``, ``scheduler.step()``. Every
``eval_every`` steps (or at each epoch's end) the model is scored on the whole
validation loader, in eval mode and without autograd. A checkpoint (see
:mod:`neural_arch.io.checkpoint`) goes to ``run_dir/checkpoints/last.safetensors``
every ``checkpoint_every`` steps and at the end.

Ctrl-C (SIGINT) does not kill the run: the current step finishes, a checkpoint
is written, and ``fit`` returns with ``trainer.interrupted = True``. A second
Ctrl-C stops at once (KeyboardInterrupt).

Callbacks are objects with any of ``on_train_start(trainer)``,
``on_step_end(trainer, metrics)``, ``on_eval_end(trainer, metrics)``,
``on_checkpoint(trainer, path)`` and ``on_train_end(trainer)``; see
:mod:`neural_arch.train.callbacks` for the progress bar, JSONL log and plot.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import neural_arch as na
from neural_arch.errors import ConfigError, NumericalError
from neural_arch.io.checkpoint import load_checkpoint, save_checkpoint
from neural_arch.nn.utils import clip_grad_norm_


class Trainer:
    def __init__(self, model, optimizer, train_loader, *, task, val_loader=None, scheduler=None,
                 max_steps: int | None = None, epochs: int | None = None, eval_every: int | None = None,
                 checkpoint_every: int | None = None, run_dir=None, grad_clip: float | None = None,
                 callbacks=(), metadata: dict | None = None):
        if (max_steps is None) == (epochs is None):
            raise ConfigError("Trainer: give exactly one of max_steps and epochs")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.task = task
        self.steps_per_epoch = len(train_loader)
        self.max_steps = max_steps if max_steps is not None else epochs * self.steps_per_epoch
        self.eval_every = eval_every
        self.checkpoint_every = checkpoint_every
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.grad_clip = grad_clip
        self.callbacks = list(callbacks)
        self.metadata = dict(metadata or {})
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # completed passes over train_loader
        self.last_eval: dict = {}
        self.interrupted = False
        self._stop_requested = False

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoints" / "last.safetensors" if self.run_dir is not None else None

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self, resume_from=None) -> dict:
        """Train until ``max_steps``; returns the last evaluation's metrics."""
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        self.interrupted = self._stop_requested = False
        with _StopOnSigint(self):
            self._call("on_train_start")
            evaluated_at = saved_at = None
            while self.step < self.max_steps and not self._stop_requested:
                batches = iter(self.train_loader)
                try:
                    for batch in batches:
                        metrics = self.train_step(batch)
                        self._call("on_step_end", metrics)
                        epoch_done = self.train_loader.position == self.steps_per_epoch
                        if epoch_done:
                            self.epoch += 1
                        if (self.eval_every and self.step % self.eval_every == 0) or (epoch_done and not self.eval_every):
                            self.evaluate()
                            evaluated_at = self.step
                        if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                            self.save_checkpoint()
                            saved_at = self.step
                        if self.step >= self.max_steps or self._stop_requested:
                            break
                finally:
                    if hasattr(batches, "close"):
                        batches.close()  # stop the loader's prefetch thread
            self.interrupted = self._stop_requested
            if evaluated_at != self.step and not self.interrupted:
                self.evaluate()
            if saved_at != self.step or self.interrupted:
                self.save_checkpoint()
            self._call("on_train_end")
        return self.last_eval

    def train_step(self, batch) -> dict:
        start = time.perf_counter()
        self.model.train()
        loss = self.task.loss(self.model, batch)
        self.optimizer.zero_grad()
        loss.backward()
        value = loss.item()
        if not math.isfinite(value):
            raise NumericalError(f"Trainer: the loss is {value} at step {self.step + 1}; lower the learning rate, "
                                 "enable grad_clip, or check the data")
        if self.grad_clip:
            clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return {"loss": value, "lr": self.optimizer.param_groups[0]["lr"], "items": self.task.batch_size(batch),
                "seconds": time.perf_counter() - start}

    def evaluate(self, loader=None) -> dict:
        """Average metrics over the whole ``loader`` (default: the validation loader)."""
        loader = loader if loader is not None else self.val_loader
        if loader is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        totals: dict[str, float] = {}
        with na.no_grad():
            for batch in loader:
                for k, v in self.task.evaluate(self.model, batch).items():
                    totals[k] = totals.get(k, 0) + v
        self.model.train(was_training)
        count = totals.pop("count", 0) or 1
        self.last_eval = {k: v / count for k, v in totals.items()}
        self._call("on_eval_end", self.last_eval)
        return self.last_eval

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, path=None) -> Path | None:
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            return None
        data_state = {"train_loader": self.train_loader.state_dict(), "epoch": self.epoch}
        metadata = dict(self.metadata, last_eval=self.last_eval)
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, step=self.step, data_state=data_state,
                        metadata=metadata)
        self._call("on_checkpoint", path)
        return path

    def load_checkpoint(self, path) -> dict:
        ckpt = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.step = int(ckpt["step"])
        data = ckpt.get("data") or {}
        if data.get("train_loader") is not None:
            self.train_loader.load_state_dict(data["train_loader"])
        self.epoch = int(data.get("epoch", 0))
        self.last_eval = (ckpt.get("metadata") or {}).get("last_eval", {})
        return ckpt

    def _call(self, event: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self, *args)


class _StopOnSigint:
    """While training: the first Ctrl-C asks the loop to stop after the current step; the second aborts."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals only reach the main thread
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.trainer._stop_requested:
            raise KeyboardInterrupt
        self.trainer._stop_requested = True
        self.trainer._call("on_interrupt")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
