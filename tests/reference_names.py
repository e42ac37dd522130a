"""Which public torch names a piece of reference code calls: ``with Recorder() as r: ...; r.names``.

It only watches, so the reference computes exactly what it computes without it: a profile function
(``sys.setprofile``) sees each call the code makes into torch, a global forward hook each ``torch.nn`` module
it runs. Only the outermost calls count (what the test wrote, not what torch does inside them): a call made
from inside torch's own modules is skipped. Names come out as ``torch.add``, ``torch.nn.functional.relu``,
``torch.Tensor.sum``, ``torch.nn.Linear``. Operators (``x + y``) and properties (``x.shape``) make no call a
profiler sees; they are not recorded. ``parity.check`` runs its torch side under it.

(A ``TorchFunctionMode`` would see those too, but it changes what some functions compute: torch 2.13's
``F.l1_loss`` drops ``weight`` on its way through the mode.)
"""

from __future__ import annotations

import importlib
import sys
import types

import torch

NAMESPACES = ("torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special")

_by_id: dict[int, set[str]] = {}  # builtins (torch.add, F.linear): id of the object -> its names
_by_code: dict[int, set[str]] = {}  # Python functions (F.l1_loss, Tensor.norm): id of the code -> names
_tensor_methods: set[str] = set()
_keep: list = []  # the indexed objects, alive so that no id is reused by another object


def _build_index() -> None:
    if _tensor_methods:
        return
    owners: dict[int, set[int]] = {}  # code id -> ids of the functions that run it (a shared wrapper: several)
    entries = [(f"{prefix}.{name}", getattr(importlib.import_module(prefix), name, None))
               for prefix in NAMESPACES for name in dir(importlib.import_module(prefix)) if not name.startswith("_")]
    entries += [(f"torch.Tensor.{name}", getattr(torch.Tensor, name, None))
                for name in dir(torch.Tensor) if not name.startswith("_")]
    for qualified, obj in entries:
        if not callable(obj) or isinstance(obj, types.ModuleType | type):
            continue
        _keep.append(obj)
        code = getattr(obj, "__code__", None)
        if code is not None:
            _keep.append(code)
            _by_code.setdefault(id(code), set()).add(qualified)
            owners.setdefault(id(code), set()).add(id(obj))
        else:
            _by_id.setdefault(id(obj), set()).add(qualified)
    for code, functions in owners.items():
        if len(functions) > 1:  # one wrapper's code behind several functions (boolean_dispatch): not telling
            del _by_code[code]
    _tensor_methods.update(n for n in dir(torch.Tensor) if not n.startswith("_"))


def _from_torch(frame) -> bool:
    return frame is None or frame.f_globals.get("__name__", "").startswith("torch")


class Recorder:
    """Collects the public torch names called while it is active (re-entrant: use it as often as needed)."""

    def __init__(self):
        _build_index()
        self.names: set[str] = set()
        self._previous = None
        self._hook = None

    def _profile(self, frame, event, arg):
        if event == "c_call":
            if _from_torch(frame):
                return
            found = _by_id.get(id(arg))
            if found is None and isinstance(getattr(arg, "__self__", None), torch.Tensor):
                found = {f"torch.Tensor.{arg.__name__}"} if arg.__name__ in _tensor_methods else None
            if found:
                self.names |= found
        elif event == "call" and not _from_torch(frame.f_back):
            found = _by_code.get(id(frame.f_code))
            if found:
                self.names |= found

    def _module_ran(self, module, inputs, output):
        cls = type(module)
        if getattr(torch.nn, cls.__name__, None) is cls:
            self.names.add(f"torch.nn.{cls.__name__}")

    def __enter__(self):
        self._hook = torch.nn.modules.module.register_module_forward_hook(self._module_ran)
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._previous)
        self._hook.remove()
        return False
