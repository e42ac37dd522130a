"""``torch.save`` / ``torch.load`` / ``torch.serialization`` in drop-in mode: state dicts and
plain tensors go to neural-arch's safetensors files (never pickle).

What can be saved: what ``na.save`` takes (tensors, arrays, numbers, strings, None, and nested
dicts/lists/tuples of those: a model's or an optimizer's ``state_dict()``, a checkpoint dict
holding both, a tensor, a list of tensors). A whole Module or Optimizer object (torch pickles
it) gets a clear error; so does reading a file written by PyTorch's own ``torch.save``.
"""

from __future__ import annotations

import contextlib
import os

from neural_arch.compat.registry import special
from neural_arch.errors import CheckpointError
from neural_arch.io import atomic_write_bytes, load_bytes, save_bytes
from neural_arch.nn import Module
from neural_arch.optim import Optimizer

_ROOT = "__torch_save_root__"  # wraps an object that is not a dict (a tensor, a list)


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True) -> None:
    """``torch.save(obj, f)``: ``f`` a path or a binary file object."""
    if isinstance(obj, (Module, Optimizer)):
        raise CheckpointError(
            f"torch.save of a whole {type(obj).__name__} object would pickle it, and neural-arch never pickles. "
            "Save its state_dict() instead (torch.save(model.state_dict(), path)) and, to load, build the object "
            "in code and call load_state_dict(torch.load(path))"
        )
    data = save_bytes(obj if isinstance(obj, dict) else {_ROOT: obj})
    if isinstance(f, (str, os.PathLike)):
        atomic_write_bytes(f, data)
    else:
        f.write(data)


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """``torch.load(f)``: what ``save`` wrote (tensors come back on the CPU; ``map_location`` is ignored)."""
    if isinstance(f, (str, os.PathLike)):
        source = os.fspath(f)
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise CheckpointError(f"torch.load: no file at '{source}'") from None
    else:
        source, data = getattr(f, "name", "<file object>"), f.read()
    if data[:2] == b"PK" or data[:1] == b"\x80":
        raise CheckpointError(
            f"torch.load: '{source}' was written by PyTorch's own torch.save (a pickle); neural-arch reads only "
            "the safetensors files its torch.save writes. Convert it once with real PyTorch: "
            "safetensors.torch.save_file(torch.load(path), 'model.safetensors'), then torch.load that file"
        )
    obj = load_bytes(data, source)
    if isinstance(obj, dict) and len(obj) == 1 and _ROOT in obj:
        return obj[_ROOT]
    return obj


_safe_globals: list = []


class safe_globals(contextlib.ContextDecorator):  # noqa: N801 - torch's name
    """Accepted for compatibility: nothing is unpickled, so there is nothing to allow."""

    def __init__(self, safe_globals: list):
        self.globals = list(safe_globals)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def add_safe_globals(safe_globals: list) -> None:
    """Accepted for compatibility (nothing is unpickled); remembered for ``get_safe_globals``."""
    _safe_globals.extend(safe_globals)


@special("torch.serialization")
def serialization() -> dict:
    """torch.serialization: save, load and the safe-globals calls (accepted; nothing is unpickled)."""
    return dict(save=save, load=load, safe_globals=safe_globals, add_safe_globals=add_safe_globals,
                get_safe_globals=lambda: list(_safe_globals), clear_safe_globals=_safe_globals.clear)
