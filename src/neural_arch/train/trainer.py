"""``Trainer``: the training loop, with evaluation, checkpoints, resuming, signals and callbacks."""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

from neural_arch.autograd import no_grad
from neural_arch.compile import compile as compile_fn
from neural_arch.errors import ConfigError, NumericalError
from neural_arch.io.checkpoint import load_checkpoint, save_checkpoint
from neural_arch.nn.utils import clip_grad_norm_
from neural_arch.optim.lr_scheduler import ReduceLROnPlateau
from neural_arch.train.precision import make_precision
from neural_arch.train.tasks import as_task

NONFINITE_POLICIES = ("halt", "skip")


class Trainer:
    """Fit a model: the loop of Lightning's ``Trainer`` over neural-arch's modules, optimizers and loaders.

    Example::

        def loss_fn(model, batch):
            x, y = batch
            return F.cross_entropy(model(x), y)

        trainer = Trainer(model, optim.AdamW(model.parameters(), lr=1e-3), train_loader, val_loader,
                          loss_fn=loss_fn, max_epochs=3, run_dir="runs/mine",
                          callbacks=[EarlyStopping("loss", patience=2), JSONLLogger("runs/mine/metrics.jsonl")])
        trainer.fit()            # or trainer.fit(resume_from="runs/mine/checkpoints/last.safetensors")

    Args:
        model: a ``Module``.
        optimizer: an ``Optimizer`` over the model's parameters.
        train_loader: an iterable of batches (a ``DataLoader``: its position is saved, so a resumed
            run continues mid-epoch with the same batches).
        val_loader: batches scored by :meth:`evaluate` (None: no evaluation).
        loss_fn: ``loss_fn(model, batch) -> loss`` (a scalar Tensor). Enough on its own: evaluation
            then averages this loss.
        task: instead of ``loss_fn``, an object following :class:`~neural_arch.train.Task`
            (``loss``, and optionally ``evaluate``, ``batch_size``, ``unit``), e.g. ``Classification()``.
        callbacks: objects with any of the hooks of :class:`~neural_arch.train.Callback`.
        scheduler: an lr scheduler stepped after every optimizer step; a ``ReduceLROnPlateau`` is
            stepped after every evaluation instead, with the validation metric ``monitor``.
        max_steps / max_epochs: how long (exactly one of them). ``epochs`` is the old name of max_epochs.
        steps_per_epoch: optimizer steps that count as one epoch (default: one pass over the loader);
            for loaders whose pass is very long or endless. A loader without ``len()`` (a generator)
            needs ``max_steps`` or this.
        accumulate_grad_batches: batches whose gradients are summed (each loss divided by this) before
            one optimizer step; the last, shorter group of an epoch also steps.
        grad_clip: the largest global gradient norm (None: no clipping).
        val_every: steps between evaluations (None: at the end of each epoch). ``eval_every`` is its old name.
        checkpoint_every: steps between writes of ``run_dir/checkpoints/last.safetensors`` (always
            one at the end).
        run_dir: where checkpoints go (None: no checkpoints).
        precision: the numeric precision of the step; ``"32"`` today (see :mod:`neural_arch.train.precision`).
        on_nonfinite: a non-finite loss or gradient norm: ``"halt"`` saves the last finite state and
            raises ``NumericalError``; ``"skip"`` drops the step (counted in ``skipped_steps``) and halts
            after ``max_nonfinite`` of them in a row.
        monitor: the validation metric a ``ReduceLROnPlateau`` scheduler receives.
        metadata: stored in every checkpoint (e.g. the run's config).
        compile: run each batch's forward and backward through ``na.compile`` (captured on the first two
            batches of a shape, replayed after; bit for bit the eager result). ``compiled.refusals``
            says why a shape stays eager.

    One step: ``accumulate_grad_batches`` times (``loss = loss_fn(model, batch) / k``, ``backward``),
    then optional clipping, ``optimizer.step()``, ``zero_grad``, ``scheduler.step()``. Evaluation runs
    the model in eval mode without autograd and averages over items, not batches.

    Stopping: a callback sets ``trainer.should_stop = True`` (e.g. EarlyStopping); the loop ends after
    the current step and saves a checkpoint. SIGINT (Ctrl-C) and SIGTERM (what Slurm and Kubernetes send
    before killing a job) do the same and set ``trainer.interrupted`` (and ``trainer.stop_signal``); a
    second signal aborts at once. An exception inside the loop first writes
    ``checkpoints/emergency.safetensors`` (the state at that moment), then propagates.
    """

    def __init__(self, model, optimizer, train_loader, val_loader=None, loss_fn=None, task=None, callbacks=(), *,
                 scheduler=None, max_steps: int | None = None, max_epochs: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, accumulate_grad_batches: int = 1,
                 grad_clip: float | None = None, val_every: int | None = None, eval_every: int | None = None,
                 checkpoint_every: int | None = None, run_dir=None, precision="32", on_nonfinite: str = "halt",
                 max_nonfinite: int = 5, monitor: str = "loss", metadata: dict | None = None,
                 compile: bool = False):  # noqa: A002 - Lightning/torch's word
        max_epochs = _one_of("max_epochs", max_epochs, "epochs", epochs)
        val_every = _one_of("val_every", val_every, "eval_every", eval_every)
        if (max_steps is None) == (max_epochs is None):
            raise ConfigError("Trainer: give exactly one of max_steps and max_epochs")
        if accumulate_grad_batches < 1:
            raise ConfigError(f"Trainer: accumulate_grad_batches must be >= 1 (got {accumulate_grad_batches})")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(f"Trainer: on_nonfinite={on_nonfinite!r} is not one of {', '.join(NONFINITE_POLICIES)}")
        if isinstance(scheduler, ReduceLROnPlateau) and val_loader is None:
            raise ConfigError("Trainer: ReduceLROnPlateau steps on a validation metric; give a val_loader")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.task = as_task(task, loss_fn)
        self.callbacks = list(callbacks)
        self.accumulate_grad_batches = accumulate_grad_batches
        self.batches_per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else None
        if steps_per_epoch is None and self.batches_per_epoch is None and max_epochs is not None:
            raise ConfigError("Trainer: the train loader has no len(); give max_steps or steps_per_epoch")
        self.steps_per_epoch = steps_per_epoch or (-(-self.batches_per_epoch // accumulate_grad_batches)
                                                   if self.batches_per_epoch is not None else None)
        self._fixed_epochs = steps_per_epoch is not None  # epochs counted in steps, not loader passes
        self.max_steps = max_steps if max_steps is not None else max_epochs * self.steps_per_epoch
        self.val_every = val_every
        self.checkpoint_every = checkpoint_every
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.grad_clip = grad_clip
        self.precision = make_precision(precision)
        self.on_nonfinite, self.max_nonfinite = on_nonfinite, max_nonfinite
        self.monitor = monitor
        self.metadata = dict(metadata or {})
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # completed epochs
        self.last_eval: dict = {}
        self.step_metrics: dict = {}  # extra scalars callbacks add for the current step (grad norm, lrs)
        self.skipped_steps = 0
        self.should_stop = False
        self.interrupted = False
        self.stop_signal: int | None = None
        self.error: BaseException | None = None  # the exception that ended fit(), if one did
        self._nonfinite_in_a_row = 0
        self.compiled = compile_fn(self._forward_backward) if compile else None

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoints" / "last.safetensors" if self.run_dir is not None else None

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self, resume_from=None) -> dict:
        """Train until ``max_steps`` or a stop; returns the last evaluation's metrics."""
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        self.interrupted = self.should_stop = False
        self.stop_signal = self.error = None
        with _StopOnSignals(self):
            self._call("on_train_start")
            try:
                evaluated_at, saved_at = self._loop()
                self.interrupted = self.stop_signal is not None
                if evaluated_at != self.step and not self.interrupted:
                    self.evaluate()
                if saved_at != self.step or self.should_stop:
                    self.save_checkpoint()
            except Exception as e:
                self.error = e
                self._save_emergency(e)
                raise
            finally:
                self._call("on_train_end")
        return self.last_eval

    def _loop(self) -> tuple[int | None, int | None]:
        self._evaluated_at = self._saved_at = None
        while self.step < self.max_steps and not self.should_stop:
            batches = iter(self.train_loader)
            seen = getattr(self.train_loader, "position", 0)  # > 0 when resumed mid-epoch
            pending = 0
            try:
                for batch in batches:
                    seen += 1
                    self._accumulate(batch, pending)
                    pending += 1
                    pass_done = seen == self.batches_per_epoch
                    if pending < self.accumulate_grad_batches and not pass_done:
                        continue
                    pending = 0
                    if self._step_and_check(pass_done):
                        return self._evaluated_at, self._saved_at
                if seen == 0:
                    raise ConfigError("Trainer: the train loader yielded no batches")
                if self.batches_per_epoch is None:  # an iterable without len(): the pass ended here
                    if pending and self._step_and_check(pass_done=True):
                        return self._evaluated_at, self._saved_at
                    if not pending and not self._fixed_epochs:
                        self._end_of_pass()
            finally:
                if hasattr(batches, "close"):
                    batches.close()  # stop the loader's prefetch thread
        return self._evaluated_at, self._saved_at

    def _step_and_check(self, pass_done: bool) -> bool:
        """One optimizer step and what follows it (epoch count, evaluation, checkpoint); True: stop now."""
        stepped = self._optimizer_step()
        if not stepped:  # a skipped non-finite step still ends the pass it was in
            if pass_done and not self._fixed_epochs:
                self.epoch += 1
            return False
        epoch_done = self.step % self.steps_per_epoch == 0 if self._fixed_epochs else pass_done
        if epoch_done:
            self.epoch += 1
        if (self.val_every and self.step % self.val_every == 0) or (epoch_done and not self.val_every):
            self.evaluate()
            self._evaluated_at = self.step
        if self.checkpoint_every and self.step % self.checkpoint_every == 0:
            self.save_checkpoint()
            self._saved_at = self.step
        return self.step >= self.max_steps or self.should_stop

    def _end_of_pass(self) -> None:
        """A pass over a loader without len() ended right after a step: count the epoch, evaluate."""
        self.epoch += 1
        if not self.val_every and self._evaluated_at != self.step:
            self.evaluate()
            self._evaluated_at = self.step

    def _accumulate(self, batch, index: int) -> None:
        """Forward and backward of one batch, its gradients added to those of the group so far."""
        if index == 0:
            self._group_start = time.perf_counter()
            self._group_losses: list[float] = []
            self._group_items = 0
            self.optimizer.zero_grad()
        self.model.train()
        loss = (self.compiled or self._forward_backward)(batch)
        self._group_losses.append(loss.item() * self.accumulate_grad_batches)
        self._group_items += self.task.batch_size(batch)

    def _forward_backward(self, batch):
        """The loss of one batch (divided by the accumulation count) and its backward."""
        with self.precision.autocast():
            loss = self.task.loss(self.model, batch)
        if self.accumulate_grad_batches > 1:
            loss = loss / self.accumulate_grad_batches
        self.precision.backward(loss)
        return loss

    def _optimizer_step(self) -> bool:
        """Clip, step, schedule; False when a non-finite step was skipped."""
        self.precision.unscale_(self.optimizer)
        self.step_metrics = {}
        loss = sum(self._group_losses) / len(self._group_losses)
        grad_norm = None
        if self.grad_clip:
            grad_norm = float(clip_grad_norm_(self.model.parameters(), self.grad_clip).item())
            self.step_metrics["grad_norm"] = grad_norm
        if not math.isfinite(loss) or (grad_norm is not None and not math.isfinite(grad_norm)):
            return self._nonfinite(loss, grad_norm)
        self._nonfinite_in_a_row = 0
        self._call("on_before_optimizer_step")
        self.precision.step(self.optimizer)
        self.optimizer.zero_grad()
        if self.scheduler is not None and not isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step()
        self.step += 1
        metrics = {"loss": loss, "lr": self.optimizer.param_groups[0]["lr"], "items": self._group_items,
                   "seconds": time.perf_counter() - self._group_start, **self.step_metrics}
        self._call("on_step_end", metrics)
        return True

    def _nonfinite(self, loss: float, grad_norm: float | None) -> bool:
        what = f"the loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {grad_norm}"
        self.optimizer.zero_grad()
        self._nonfinite_in_a_row += 1
        if self.on_nonfinite == "skip" and self._nonfinite_in_a_row < self.max_nonfinite:
            self.skipped_steps += 1
            self._call("on_skipped_step", what)
            return False
        # NOTE: the parameters are still those of the last finite step: that is what gets saved
        path = self.save_checkpoint()
        saved = f"; the last finite state is in {path}" if path is not None else ""
        in_a_row = f" ({self._nonfinite_in_a_row} steps in a row)" if self.on_nonfinite == "skip" else ""
        raise NumericalError(f"Trainer: {what} at step {self.step + 1}{in_a_row}{saved}; lower the learning rate, "
                             "enable grad_clip, or check the data")

    def evaluate(self, loader=None) -> dict:
        """Average the task's metrics over the whole ``loader`` (default: the validation loader)."""
        loader = loader if loader is not None else self.val_loader
        if loader is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        totals: dict[str, float] = {}
        with no_grad():
            for batch in loader:
                for k, v in self.task.evaluate(self.model, batch).items():
                    totals[k] = totals.get(k, 0) + v
        self.model.train(was_training)
        count = totals.pop("count", 0) or 1
        self.last_eval = {k: v / count for k, v in totals.items()}
        if isinstance(self.scheduler, ReduceLROnPlateau) and loader is self.val_loader:
            if self.monitor not in self.last_eval:
                raise ConfigError(f"Trainer: monitor={self.monitor!r} is not among the validation metrics "
                                  f"({', '.join(self.last_eval)}); ReduceLROnPlateau needs one of them")
            self.scheduler.step(self.last_eval[self.monitor])
        self._call("on_eval_end", self.last_eval)
        return self.last_eval

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, path=None) -> Path | None:
        """Write the whole training state (model, optimizer, scheduler, RNG, loader position) to ``path``."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            return None
        loader_state = self.train_loader.state_dict() if hasattr(self.train_loader, "state_dict") else None
        data_state = {"train_loader": loader_state, "epoch": self.epoch}
        metadata = dict(self.metadata, last_eval=self.last_eval)
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, step=self.step, data_state=data_state,
                        metadata=metadata)
        self._call("on_checkpoint", path)
        return path

    def load_checkpoint(self, path) -> dict:
        """Restore a checkpoint written by :meth:`save_checkpoint`; returns its contents."""
        ckpt = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.step = int(ckpt["step"])
        data = ckpt.get("data") or {}
        if data.get("train_loader") is not None and hasattr(self.train_loader, "load_state_dict"):
            self.train_loader.load_state_dict(data["train_loader"])
        self.epoch = int(data.get("epoch", 0))
        self.last_eval = (ckpt.get("metadata") or {}).get("last_eval", {})
        return ckpt

    def _save_emergency(self, error: BaseException) -> None:
        if self.run_dir is None or self.step == 0 or isinstance(error, NumericalError):
            return  # nothing to save, nothing learnt yet, or NumericalError saved its own
        try:
            path = self.save_checkpoint(self.run_dir / "checkpoints" / "emergency.safetensors")
        except Exception as e:  # noqa: BLE001 - the original error is the one to report
            error.add_note(f"(no emergency checkpoint: saving failed with {type(e).__name__}: {e})")
            return
        error.add_note(f"an emergency checkpoint of step {self.step} is in {path}")

    def _call(self, event: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self, *args)


def _one_of(name: str, value, old_name: str, old_value):
    if value is not None and old_value is not None:
        raise ConfigError(f"Trainer: {old_name} is the old name of {name}; give one of them")
    return value if value is not None else old_value


class _StopOnSignals:
    """While training: SIGINT or SIGTERM asks the loop to stop after the current step; a second one aborts."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals only reach the main thread
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.trainer.stop_signal is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.trainer.stop_signal = signum
        self.trainer.should_stop = True
        self.trainer._call("on_interrupt")

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
