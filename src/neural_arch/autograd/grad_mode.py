"""Grad modes (``no_grad``, ``enable_grad``, ``inference_mode``,
``set_grad_enabled``) and anomaly detection (``detect_anomaly``).

The state is two attributes of one object that ``Function.apply`` reads on
every op; the context managers save and restore it, so they nest, and each
also works as a decorator.
"""

from __future__ import annotations

import functools


class _State:
    __slots__ = ("grad_enabled", "anomaly")

    def __init__(self):
        self.grad_enabled = True
        self.anomaly = False


STATE = _State()


class _Mode:
    """Base for context managers that set one flag and restore it on exit."""

    flag = "grad_enabled"
    value = True

    def __enter__(self):
        self._prev = getattr(STATE, self.flag)
        setattr(STATE, self.flag, self.value)
        return self

    def __exit__(self, *exc):
        setattr(STATE, self.flag, self._prev)
        return False

    def __new__(cls, *args, **kwargs):
        # ``@no_grad`` without parentheses: the "argument" is the function to decorate
        if len(args) == 1 and callable(args[0]) and not kwargs and cls is not set_grad_enabled:
            return cls()(args[0])
        return super().__new__(cls)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args()):
                return fn(*args, **kwargs)

        return wrapper

    def _args(self):
        return ()


class no_grad(_Mode):  # noqa: N801 - torch's name
    """Ops inside record no graph: results have ``requires_grad=False``."""

    value = False


class enable_grad(_Mode):  # noqa: N801
    """Turn recording back on inside a ``no_grad`` block."""

    value = True


class inference_mode(_Mode):  # noqa: N801
    """Like ``no_grad`` (there is no separate inference tensor kind here)."""

    def __init__(self, mode: bool = True):
        self.value = not mode

    def _args(self):
        return (not self.value,)


class set_grad_enabled(_Mode):  # noqa: N801
    """``set_grad_enabled(False)`` is ``no_grad()``; takes effect at once, as in torch."""

    def __init__(self, mode: bool):
        self.value = bool(mode)
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self.value

    def __enter__(self):
        return self

    def __call__(self, fn):
        STATE.grad_enabled = self._prev  # as a decorator it must not change the mode at definition time
        return super().__call__(fn)

    def _args(self):
        return (self.value,)


class detect_anomaly(_Mode):  # noqa: N801
    """Check every forward output and every gradient for NaN/Inf.

    The first op whose forward or backward produces one raises
    :class:`~neural_arch.errors.NumericalError` naming that op. It costs a
    full scan of every array, so use it to debug, not to train.
    """

    flag = "anomaly"

    def __init__(self, mode: bool = True):
        self.value = bool(mode)

    def _args(self):
        return (self.value,)


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``, ``inference_mode()`` or ``set_grad_enabled(False)`` (as torch)."""
    return STATE.grad_enabled


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()``: backward checks every gradient for nan/inf (as torch)."""
    return STATE.anomaly
