"""``GradScaler``: dynamic loss scaling for float16 training, torch's ``torch.amp.GradScaler``.

float16 has a narrow range: small gradients underflow to zero. The scaler multiplies the loss by a
large ``scale`` before backward, so the gradients are ``scale`` times too large, then divides them
back before the optimizer uses them::

    scaler = na.amp.GradScaler()
    for x, y in loader:
        optimizer.zero_grad()
        with na.autocast("cpu", dtype=na.float16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)            # optional: before clipping or reading the gradients
        scaler.step(optimizer)                # skipped when a gradient is inf or NaN
        scaler.update()                       # the scale backs off after a skip, grows after
                                              # growth_interval good steps in a row

The scale and its arithmetic are float32, as torch's scale tensor, so that the sequence of scales,
and the unscaled gradients, are the same as torch's bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd import Tensor
from neural_arch.errors import CheckpointError, ConfigError, GradientError

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    """Scale the loss, unscale the gradients, skip steps with inf/NaN gradients, adapt the scale.

    Args:
        device: ``"cpu"`` (torch's ``device`` argument; the scale lives with the gradients).
        init_scale: the first scale (2**16).
        growth_factor: the scale is multiplied by this after ``growth_interval`` steps in a row
            without inf/NaN gradients (> 1).
        backoff_factor: the scale is multiplied by this after a step with inf/NaN gradients (< 1).
        growth_interval: good steps in a row before the scale grows.
        enabled: ``False`` makes every method the plain operation (``scale`` returns its input,
            ``step`` calls ``optimizer.step()``), so one training loop serves both precisions.
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        self._enabled = bool(enabled)
        self._device = device
        if self._enabled:
            if growth_factor <= 1.0:
                raise ConfigError(f"GradScaler: growth_factor must be > 1.0 (got {growth_factor})")
            if backoff_factor >= 1.0:
                raise ConfigError(f"GradScaler: backoff_factor must be < 1.0 (got {backoff_factor})")
            if not (isinstance(growth_interval, int) and growth_interval >= 1):
                raise ConfigError(f"GradScaler: growth_interval must be an int >= 1 (got {growth_interval!r})")
        # one 0-d float32 tensor, updated in place: scale() multiplies by this same object, so a compiled
        # step (na.compile) reads the scale of the moment instead of the one it was captured with
        self._scale_tensor = Tensor(np.array(init_scale, dtype=np.float32))
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0  # good steps in a row since the last change of scale
        self._per_optimizer: dict[int, dict] = {}  # id(optimizer) -> {"stage", "found_inf"} for this iteration

    @property
    def _scale(self) -> np.float32:
        return self._scale_tensor.data[()]

    @_scale.setter
    def _scale(self, value) -> None:
        self._scale_tensor.data[...] = value

    # -- the four calls of a training step ---------------------------------------------------------
    def scale(self, outputs):
        """``outputs * scale`` (a Tensor, or a list/tuple of them); the input itself when disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale_tensor
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a Tensor or a list/tuple of Tensors, got {type(outputs).__name__}")

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by the scale, in place, and note whether
        any is inf/NaN. At most once per optimizer between two ``update()`` calls."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] is _UNSCALED:
            raise GradientError("GradScaler.unscale_() was already called on this optimizer since the last "
                                "update(); call it once per step")
        if state["stage"] is _STEPPED:
            raise GradientError("GradScaler.unscale_() is being called after step(); call update() first")
        # float32 reciprocal of the scale (torch: scale.double().reciprocal().float())
        inv_scale = np.float32(1.0 / float(self._scale))
        found_inf = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                found_inf = found_inf or not np.isfinite(g).all()  # (``not``: a Python bool)
                if g.flags.writeable:
                    np.multiply(g, inv_scale.astype(g.dtype), out=g, casting="unsafe")
                else:  # a read-only gradient (e.g. a broadcast): replace it
                    p.grad.data = (g * inv_scale.astype(g.dtype)).astype(g.dtype, copy=False)
        state["found_inf"] = found_inf
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step()`` with unscaled gradients, unless one of them is inf/NaN (then nothing);
        returns what ``optimizer.step`` returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise ConfigError("GradScaler.step: a closure is not supported while the scaler is enabled (as in torch)")
        state = self._state(optimizer)
        if state["stage"] is _STEPPED:
            raise GradientError("GradScaler.step() was already called since the last update()")
        if state["stage"] is _READY:
            self.unscale_(optimizer)
        state["stage"] = _STEPPED
        if state["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Adapt the scale after this iteration's ``step`` calls: times ``backoff_factor`` if any
        optimizer saw inf/NaN, times ``growth_factor`` after ``growth_interval`` good steps in a row.
        ``new_scale`` sets it instead."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = np.float32(float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale))
        else:
            if not self._per_optimizer or any(s["found_inf"] is None for s in self._per_optimizer.values()):
                raise GradientError("GradScaler.update(): no inf checks were recorded this iteration; call "
                                    "step(optimizer) (or unscale_) before update()")
            if any(s["found_inf"] for s in self._per_optimizer.values()):
                self._scale = np.float32(self._scale * np.float32(self._backoff_factor))
                self._growth_tracker = 0
            else:
                good = self._growth_tracker + 1
                if good == self._growth_interval:
                    grown = np.float32(self._scale * np.float32(self._growth_factor))
                    if math.isfinite(grown):  # never grow to inf (torch's rule)
                        self._scale = grown
                    good = 0
                self._growth_tracker = good
        self._per_optimizer = {}

    # -- reading and setting ------------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled, as torch)."""
        return float(self._scale) if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        """The factor the scale grows by."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the factor the scale grows by."""
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        """The factor the scale shrinks by after a skipped step."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the factor the scale shrinks by after a skipped step."""
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        """Good steps in a row before the scale grows."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the number of good steps in a row before the scale grows."""
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        """Whether the scaler scales (``enabled=True``)."""
        return self._enabled

    def state_dict(self) -> dict:
        """torch's five entries (``scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval``,
        ``_growth_tracker``); an empty dict when disabled. Take it after ``update()``."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (nothing happens when disabled)."""
        if not self._enabled:
            return
        if not state_dict:
            raise CheckpointError("GradScaler.load_state_dict: the state is empty, probably saved from a disabled "
                                  "GradScaler (precision without loss scaling)")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} - set(state_dict)
        if missing:
            raise CheckpointError(f"GradScaler.load_state_dict: the state lacks {sorted(missing)}")
        self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": None})
