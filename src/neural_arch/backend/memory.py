"""The allocation policy: large freed blocks stay with the process, to be reused by the next step.

glibc's malloc hands a block above its mmap threshold (128 KiB, raised adaptively to at most
32 MiB) a fresh ``mmap``, and gives freed memory above its trim threshold back to the OS. A
training step allocates and frees the same large arrays every iteration, so every step would
fault its activations and gradients in again, page by page, each page zeroed by the kernel
(figures: BENCHMARKS.md, "The allocation policy").

So on glibc, :func:`keep_freed_memory` raises both thresholds with ``mallopt``: blocks up to
``_THRESHOLD`` come from the heap and freed ones are kept for reuse. It is process-wide and cannot
be scoped to our own calls, so it is applied when neural-arch first runs work (the first op,
``Function.apply``), never at ``import neural_arch``: a process that imports us and runs no op keeps
malloc as it was. The price is that the process's resident memory stays near its peak after a large
computation instead of shrinking (peak memory itself does not grow: the same sizes are reused).
PyTorch users get the same effect from jemalloc or tcmalloc. ``NEURAL_ARCH_KEEP_MEMORY=0`` leaves
malloc as it was; other C libraries (macOS, musl, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # 1 GiB: anything a CPU training step allocates at once

_state = "not applied"


def keep_freed_memory() -> str:
    """Raise glibc's mmap and trim thresholds (once); returns what was done, for ``neural-arch info``."""
    global _state
    if _state != "not applied":
        return _state
    libc = _glibc() if sys.platform.startswith("linux") else None
    if os.environ.get("NEURAL_ARCH_KEEP_MEMORY", "").strip() == "0":
        _state = "off (NEURAL_ARCH_KEEP_MEMORY=0)"
    elif libc is None:
        _state = "off (not glibc)"
    else:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
        _state = f"freed blocks up to {_THRESHOLD >> 20} MiB kept for reuse" if ok else "off (mallopt refused)"
    return _state


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return libc


def describe() -> str:
    return _state
