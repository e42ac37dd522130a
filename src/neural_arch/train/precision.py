"""The precision of the training step: full float32, or mixed precision (autocast + loss scaling).

The trainer runs every step through one ``Precision`` object::

    with precision.autocast():
        loss = task.loss(model, batch)
    precision.backward(loss)          # 16-mixed: the loss is scaled first
    precision.unscale_(optimizer)     # before clipping or measuring gradients
    precision.step(optimizer)         # 16-mixed: skipped when a gradient is inf/NaN, then the scale adapts

Lightning's names:

* ``"32"`` (also ``"32-true"``, ``32``): everything in float32.
* ``"bf16-mixed"`` (also ``"bf16"``): forward and loss under ``autocast("cpu", dtype=bfloat16)``; the
  parameters, their gradients and the optimizer stay float32. bfloat16 has float32's range, so no
  loss scaling.
* ``"16-mixed"`` (also ``"16"``, ``16``): ``autocast("cpu", dtype=float16)`` and a ``GradScaler``. A step
  whose gradients overflow is skipped by the scaler (the scale backs off) and still counts as a step,
  as in Lightning; the scaler's state is saved in checkpoints and restored on resume.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from neural_arch.amp import GradScaler
from neural_arch.autograd.autocast import autocast
from neural_arch.backend.dtypes import bfloat16, float16
from neural_arch.errors import ConfigError

SUPPORTED = ("32", "bf16-mixed", "16-mixed")
ALIASES = {"32": "32", "32-true": "32", "bf16-mixed": "bf16-mixed", "bf16": "bf16-mixed", "16-mixed": "16-mixed",
           "16": "16-mixed"}


def canonical_precision(precision) -> str:
    """Lightning's name for a precision value (``32`` -> ``"32"``, ``"bf16"`` -> ``"bf16-mixed"``);
    ConfigError for anything else."""
    name = ALIASES.get(str(precision).strip().lower())
    if name is None:
        raise ConfigError(f"precision={precision!r} is not supported; use one of {', '.join(SUPPORTED)} "
                          "(also accepted: '32-true', 'bf16', 16)")
    return name


class Precision:
    """Full precision: autocast is a no-op, the loss is not scaled."""

    name = "32"

    def autocast(self):
        """The context the forward and the loss run in."""
        return nullcontext()

    def backward(self, loss) -> None:
        """Backward of the (possibly scaled) loss."""
        loss.backward()

    def unscale_(self, optimizer) -> None:
        """Bring the gradients back to their true size (before clipping or reading them)."""

    def step(self, optimizer) -> None:
        """The optimizer step (a scaler may skip it)."""
        optimizer.step()

    @property
    def skipped_by_scaler(self) -> bool:
        """Whether the last ``unscale_`` found inf/NaN gradients that the scaler will skip."""
        return False

    def state_dict(self) -> dict:
        """What a checkpoint keeps of the precision (the scaler's state)."""
        return {"name": self.name}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s contents (a checkpoint of another precision is accepted)."""


class MixedPrecision(Precision):
    """Autocast around forward and loss; with ``scaler`` (16-mixed) loss scaling and skipped overflow steps."""

    def __init__(self, name: str, dtype, scaler: GradScaler | None = None):
        self.name = name
        self.dtype = dtype
        self.scaler = scaler
        self.scaler_skipped_steps = 0  # steps the scaler skipped for inf/NaN gradients (16-mixed)

    def autocast(self):
        """``autocast("cpu", dtype=self.dtype)``."""
        return autocast("cpu", dtype=self.dtype)

    def backward(self, loss) -> None:
        """Backward of the loss, scaled by the scaler when there is one."""
        if self.scaler is None:
            loss.backward()
            return
        # NOTE: a scaled float16 backward may overflow: the scaler finds it and skips the step, so NumPy's
        # overflow warnings would only be noise (torch does not warn either)
        with np.errstate(over="ignore", invalid="ignore"):
            self.scaler.scale(loss).backward()

    def unscale_(self, optimizer) -> None:
        """The scaler's ``unscale_`` (nothing for bf16-mixed)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer) -> None:
        """``optimizer.step()``; with a scaler, its ``step`` (skipped on inf/NaN) and ``update``."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler_skipped_steps += self.skipped_by_scaler
        self.scaler.step(optimizer)
        self.scaler.update()

    @property
    def skipped_by_scaler(self) -> bool:
        """Whether the scaler found inf/NaN gradients in this step (it will skip it)."""
        if self.scaler is None:
            return False
        return any(s["found_inf"] for s in self.scaler._per_optimizer.values())

    def state_dict(self) -> dict:
        """The name, and the scaler's state and skip count when there is a scaler."""
        state = {"name": self.name}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
            state["scaler_skipped_steps"] = self.scaler_skipped_steps
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the scaler's state (a checkpoint without one leaves the scaler as it is)."""
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
            self.scaler_skipped_steps = int(state.get("scaler_skipped_steps", 0))


def make_precision(precision) -> Precision:
    """The ``Precision`` for a ``Trainer(precision=...)`` value (see the module doc for the names)."""
    if isinstance(precision, Precision):
        return precision
    name = canonical_precision(precision)
    if name == "bf16-mixed":
        return MixedPrecision(name, bfloat16)
    if name == "16-mixed":
        return MixedPrecision(name, float16, GradScaler("cpu"))
    return Precision()
