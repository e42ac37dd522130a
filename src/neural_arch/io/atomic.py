"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The recipe (the same one databases use):

1. write the bytes to a temporary file *in the same directory* (so that the
   rename below never crosses a file system),
2. ``flush`` Python's buffer and ``fsync`` the file, so its bytes are on disk,
3. ``os.replace`` it over the target: a rename, atomic on POSIX and Windows,
4. ``fsync`` the directory, so the rename itself survives a power cut.

A process killed at any moment (even SIGKILL, which runs no cleanup) leaves
the previous file intact; at worst a stray ``.<name>.*.tmp`` file remains.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Make ``path`` the file that ``write(tmp)`` writes at the temporary path ``tmp``, atomically (see the
    module docstring: same directory, fsync, rename, fsync of the directory); returns the path."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        honour_umask(tmp)
        _fsync(tmp, os.O_RDWR)
        os.replace(tmp, path)
    except BaseException:
        # NOTE: BaseException, so that Ctrl-C during a save removes the temp file too.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if os.name == "posix":  # Windows cannot open a directory; its rename is durable enough
        _fsync(directory, os.O_RDONLY)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring) and return the path."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def honour_umask(path) -> None:
    """Give a ``mkstemp`` file the mode ``open()`` would have given it: 0o666 minus the umask.

    ``mkstemp`` creates files with 0o600 whatever the umask says; a checkpoint
    that replaces the target should be readable as the user's other files are.
    """
    if os.name == "posix":
        os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    try:  # Linux reports it without changing it (no window where another thread sees umask 0)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o077)
    os.umask(umask)  # elsewhere reading it means setting it; put it straight back
    return umask


def _fsync(path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
