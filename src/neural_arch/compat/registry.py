"""The torch modules of drop-in mode that are not a neural-arch module (``torch.cuda``,
``torch.serialization``, ...): name -> the function that builds that module's entries."""

from __future__ import annotations

SPECIAL: dict = {}


def special(name: str):
    """Register a builder of a torch module's own entries (see ``devices.py``, ``serialization.py``)."""
    def register(fn):
        SPECIAL[name] = fn
        return fn
    return register
