"""Which implementation of a kernel family function runs: the one decision (see ``kernels/__init__``)."""

from __future__ import annotations

import contextlib
import importlib.util
from collections import Counter

import numpy as np

from neural_arch.backend.threads import policy


def numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


_on = policy.jit and numba_installed()  # (policy.jit: False when NEURAL_ARCH_JIT is 0 / false / no / off)
calls: Counter = Counter()
_F32 = np.dtype(np.float32)


def active() -> bool:
    """Whether the numba kernels run (for float32 arrays) in this process."""
    return _on


def set_enabled(flag: bool) -> None:
    """Switch the kernels on or off for this process (tests compare both implementations).
    Switching on needs numba (:class:`ImportError` otherwise); the environment is not touched."""
    global _on
    if flag and not numba_installed():
        raise ImportError("the kernels need numba: pip install numba (or run with NEURAL_ARCH_JIT=0)")
    _on = bool(flag)


@contextlib.contextmanager
def enabled(flag: bool):
    """``with kernels.enabled(False):`` runs the twins inside the block (tests and benchmarks compare the
    two implementations); the previous setting comes back after it."""
    was = _on
    set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(was)


def dispatch(twin, min_elements: int = 1, checked: int | None = None, first=_F32):
    """Decorator: ``@dispatch(twin)`` over a kernel's wrapper makes the array function that runs the
    wrapper or ``twin`` (same signature; see the module doc). ``min_elements``: below this size of
    the first argument the twin runs (one NumPy call costs less there); ``checked``: how many leading
    arguments must not be floating arrays of another dtype (default all; e.g. not the float64
    statistics a forward kernel wrote); ``first``: the dtype of the first argument the kernel takes
    (float32, or bfloat16 for the conversion that reads it), or a tuple of them (float32 and
    bfloat16 for a kernel with a bfloat16 path: then the checked arguments may be either too)."""
    firsts = tuple(np.dtype(d) for d in (first if isinstance(first, tuple) else (first,)))
    accepted = firsts + (_F32,)

    def decorate(kernel):
        name = kernel.__name__

        def run(*args):
            x = args[0]
            if _on and type(x) is np.ndarray and x.dtype in firsts and x.ndim and x.size >= min_elements:
                for a in args[:checked]:
                    # (kind "V": bfloat16, whose NumPy kind is not "f")
                    if type(a) is np.ndarray and a.dtype not in accepted and a.dtype.kind in "fV":
                        return twin(*args)
                calls[name] += 1
                return kernel(*args)
            return twin(*args)

        run.__name__ = run.__qualname__ = name
        run.__doc__, run.kernel, run.twin = twin.__doc__, kernel, twin
        return run

    return decorate
