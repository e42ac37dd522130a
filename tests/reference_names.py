"""Which public torch names a piece of reference code calls: ``with Recorder() as r: ...; r.names``.

A ``TorchFunctionMode`` sees every torch function, ``Tensor`` method and property the code calls (only
the outermost call: what the test wrote, not what torch does inside it); a global forward hook sees
every ``torch.nn`` module it runs. Names come out as ``torch.add``, ``torch.nn.functional.relu``,
``torch.Tensor.sum``, ``torch.nn.Linear``. ``parity.check`` runs its torch side under it.
"""

from __future__ import annotations

import importlib
import types

import torch
from torch.overrides import TorchFunctionMode

NAMESPACES = ("torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special")

_index: dict[int, set[str]] = {}
_keep: list = []  # the indexed objects, alive so that no id is reused by another object


def _build_index() -> dict[int, set[str]]:
    """id of each public torch callable or descriptor -> its public names (aliases share one object)."""
    if not _index:
        for prefix in NAMESPACES:
            module = importlib.import_module(prefix)
            for name in dir(module):
                obj = getattr(module, name, None)
                if not name.startswith("_") and callable(obj) and not isinstance(obj, types.ModuleType):
                    _keep.append(obj)
                    _index.setdefault(id(obj), set()).add(f"{prefix}.{name}")
        for name in dir(torch.Tensor):
            obj = getattr(torch.Tensor, name, None)
            if not name.startswith("_") and obj is not None:
                _keep.append(obj)
                _index.setdefault(id(obj), set()).add(f"torch.Tensor.{name}")
    return _index


def names_of(func) -> set[str]:
    """The public torch names of the object a torch-function mode received."""
    index = _build_index()
    found = index.get(id(func))
    if found is None and type(func).__name__ == "method-wrapper" and func.__name__ == "__get__":
        found = index.get(id(func.__self__))  # a property read (x.shape, x.T): the descriptor is the name
    return found or set()


class Recorder(TorchFunctionMode):
    """Collects the public torch names called while it is active."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()
        self._hook = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names |= names_of(func)
        return func(*args, **(kwargs or {}))

    def _module_ran(self, module, inputs, output):
        cls = type(module)
        if getattr(torch.nn, cls.__name__, None) is cls:
            self.names.add(f"torch.nn.{cls.__name__}")

    def __enter__(self):
        self._hook = torch.nn.modules.module.register_module_forward_hook(self._module_ran)
        return super().__enter__()

    def __exit__(self, *exc):
        self._hook.remove()
        return super().__exit__(*exc)
