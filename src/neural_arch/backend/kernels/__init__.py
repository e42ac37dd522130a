"""Optional fused CPU kernels (numba), each with a NumPy reference beside it.

The ops in :mod:`neural_arch.ops` ask ``kernels.get()`` for the kernel
module; it returns ``None`` when numba is not installed, when the
environment sets ``NEURAL_ARCH_JIT=0``, or when compiling failed, and the
op then runs its readable NumPy implementation. Tests run both paths and
check that they agree.

Why numba and not NumPy alone: a fused kernel reads its input once and
writes its output once, where the NumPy spelling of the same formula makes a
temporary array per operator. For bandwidth-bound ops (GELU, layer norm,
softmax, cross-entropy, optimizer steps) that is the whole difference.
"""

from __future__ import annotations

import os

from neural_arch.backend import threads

_module = None
_tried = False


def enabled_by_env() -> bool:
    return os.environ.get("NEURAL_ARCH_JIT", "1").strip().lower() not in ("0", "false", "no", "off")


def get():
    """The numba kernel module, or None (then use the NumPy path)."""
    global _module, _tried
    if not _tried:
        _tried = True
        if enabled_by_env():
            threads.configure_numba()
            try:
                from neural_arch.backend.kernels import cpu  # noqa: PLC0415

                _module = cpu
            except ImportError:
                _module = None
    return _module


def set_enabled(flag: bool) -> None:
    """Switch the kernels on or off for this process (tests compare both paths)."""
    global _module, _tried
    if flag:
        _tried = False
        os.environ["NEURAL_ARCH_JIT"] = "1"
        get()
    else:
        _module, _tried = None, True
