"""The precision hook of the training step: where mixed precision (autocast + loss scaling) plugs in.

The trainer runs every step through one ``Precision`` object::

    with precision.autocast():
        loss = task.loss(model, batch)
    precision.backward(loss)          # loss scaling goes here
    precision.unscale_(optimizer)     # before clipping or measuring gradients
    precision.step(optimizer)         # a scaler skips steps with inf/nan gradients

Today only full float32 (``"32"``) exists and each call is the plain operation;
the mixed-precision work fills ``"bf16-mixed"`` / ``"16-mixed"`` in here without
touching the loop.
"""

from __future__ import annotations

from contextlib import nullcontext

from neural_arch.errors import ConfigError

SUPPORTED = ("32",)


class Precision:
    """Full precision: autocast is a no-op, the loss is not scaled."""

    name = "32"

    def autocast(self):
        return nullcontext()

    def backward(self, loss) -> None:
        loss.backward()

    def unscale_(self, optimizer) -> None:
        pass

    def step(self, optimizer) -> None:
        optimizer.step()

    def state_dict(self) -> dict:
        return {}


def make_precision(precision) -> Precision:
    """The ``Precision`` for a ``Trainer(precision=...)`` value; anything but "32" is a ConfigError for now."""
    if isinstance(precision, Precision):
        return precision
    if str(precision) in ("32", "32-true"):
        return Precision()
    raise ConfigError(f"Trainer: precision={precision!r} is not supported yet; use precision='32' (full float32). "
                      "Mixed precision ('bf16-mixed', '16-mixed') is planned behind this same argument")
