"""Which public torch names a piece of reference code calls: ``with Recorder() as r: ...; r.names``.

It only watches, so the reference computes exactly what it computes without it: a profile function
(``sys.setprofile``) sees each call the code makes into torch and the ``__init__`` of each torch class it
builds (an optimizer, a scheduler, a dataset, sampler or loader, a distribution; a user's subclass counts as
the torch class it derives from); a global forward hook sees each ``torch.nn`` module it runs (a module counts
when it runs, not when it is built; a container that never runs, ``ModuleList``, counts when built). Only the
outermost calls count (what the test wrote, not what torch does inside them): a call made from inside torch's
own modules is skipped, and so is a layer run inside another. Names come out as ``torch.add``,
``torch.nn.functional.relu``, ``torch.Tensor.sum``, ``torch.nn.Linear``, ``torch.optim.Adam``. Operators
(``x + y``) and properties (``x.shape``) make no call a profiler sees; they are not recorded. ``parity.check``
and ``parity.reference`` run their torch side under it.

(A ``TorchFunctionMode`` would see those too, but it changes what some functions compute: torch 2.13's
``F.l1_loss`` drops ``weight`` on its way through the mode.)
"""

from __future__ import annotations

import importlib
import sys
import types

import torch

NAMESPACES = ("torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special", "torch.optim",
              "torch.optim.lr_scheduler", "torch.utils.data", "torch.distributions")

_by_id: dict[int, set[str]] = {}  # builtins (torch.add, F.linear): id of the object -> its names
_by_code: dict[int, set[str]] = {}  # Python functions (F.l1_loss, Tensor.norm): id of the code -> names
_by_closure: dict[tuple, set[str]] = {}  # a wrapper shared by several (F.max_pool2d): (code id, ids of its cells)
_classes: dict[type, set[str]] = {}  # torch's public classes -> their names (torch.nn.Linear, torch.optim.Adam)
_tensor_methods: set[str] = set()
_keep: list = []  # the indexed objects, alive so that no id is reused by another object


_indexed_with_dynamo: list[bool] = []  # whether torch._dynamo was imported when the index was (last) built


def _build_index() -> None:
    # importing torch._dynamo (torch.compile) replaces some of torch's functions by wrappers (torch.manual_seed):
    # index again then, keeping the old entries (a reference may still hold the functions it had before)
    dynamo = "torch._dynamo" in sys.modules
    if _tensor_methods and _indexed_with_dynamo[-1] == dynamo:
        return
    _indexed_with_dynamo.append(dynamo)
    owners: dict[int, dict[int, object]] = {}  # code id -> the functions that run it (a shared wrapper: several)
    entries = [(f"{prefix}.{name}", getattr(importlib.import_module(prefix), name, None))
               for prefix in NAMESPACES for name in dir(importlib.import_module(prefix)) if not name.startswith("_")]
    entries += [(f"torch.Tensor.{name}", getattr(torch.Tensor, name, None))
                for name in dir(torch.Tensor) if not name.startswith("_")]
    for qualified, obj in entries:
        if isinstance(obj, type):
            if obj.__module__.startswith("torch"):  # not an import (weakref.ref in lr_scheduler)
                _classes.setdefault(obj, set()).add(qualified)
            continue
        if not callable(obj) or isinstance(obj, types.ModuleType):
            continue
        if not (getattr(obj, "__module__", None) or "torch").startswith("torch"):
            continue  # an import in torch's namespace (typing.cast in lr_scheduler), not torch's API
        _keep.append(obj)
        code = getattr(obj, "__code__", None)
        if code is not None:
            _keep.append(code)
            _by_code.setdefault(id(code), set()).add(qualified)
            owners.setdefault(id(code), {})[id(obj)] = obj
        else:
            _by_id.setdefault(id(obj), set()).add(qualified)
    for code, functions in owners.items():
        if len(functions) > 1:  # one wrapper's code behind several functions (boolean_dispatch): told apart by
            names = _by_code.pop(code)  # what its closure holds (max_pool2d's if_true/if_false functions)
            for fn in functions.values():
                key = (code, tuple(id(_contents(cell)) for cell in fn.__closure__ or ()))
                _by_closure.setdefault(key, set()).update(n for n in names if _resolve(n) is fn)
    _tensor_methods.update(n for n in dir(torch.Tensor) if not n.startswith("_"))


def _resolve(qualified: str):
    """The object a qualified name (``torch.nn.functional.max_pool2d``) names."""
    owner, _, name = qualified.rpartition(".")
    base = torch.Tensor if owner == "torch.Tensor" else importlib.import_module(owner)
    return getattr(base, name, None)


def _contents(cell):
    """What a closure cell holds (None while it is empty, as the frame's locals then say)."""
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _closure_key(frame) -> tuple:
    """The key of ``_by_closure`` for a running frame: its code and the objects its free variables hold."""
    local = frame.f_locals
    return (id(frame.f_code), tuple(id(local.get(v)) for v in frame.f_code.co_freevars))


def _from_torch(frame) -> bool:
    return frame is None or frame.f_globals.get("__name__", "").startswith("torch")


def _torch_class(cls: type) -> set[str]:
    """The names of the first public torch class in ``cls``'s MRO (``cls`` itself, or the torch class a user's
    class derives from)."""
    for base in cls.__mro__:
        if base in _classes:
            return _classes[base]
    return set()


def _runs(cls: type) -> bool:
    """Whether a torch.nn.Module class is counted when it runs, not when built: one with a forward of its own,
    except a lazy module (its first run turns it into the plain class: ``LazyLinear`` runs as ``Linear``)."""
    return (issubclass(cls, torch.nn.Module) and cls.forward is not torch.nn.Module.forward
            and not issubclass(cls, torch.nn.modules.lazy.LazyModuleMixin))


def _constructed(frame) -> set[str]:
    """The torch class an ``__init__``/``__new__`` frame builds an instance of ('' when it is no torch class)."""
    local = frame.f_locals
    cls = local.get("cls") if frame.f_code.co_name == "__new__" else type(local.get("self"))
    if not isinstance(cls, type) or _runs(cls):
        return set()
    return _torch_class(cls)


class Recorder:
    """Collects the public torch names called while it is active (re-entrant: use it as often as needed)."""

    def __init__(self):
        _build_index()
        self.names: set[str] = set()
        self._previous = None
        self._hooks = []
        self._depth = 0  # torch.nn modules running now, one inside the other

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
            if found is None and frame.f_code.co_freevars:
                found = _by_closure.get(_closure_key(frame))
            if found is None and frame.f_code.co_name in ("__init__", "__new__"):
                found = _constructed(frame)
            if found:
                self.names |= found

    def _module_starts(self, module, inputs):
        self._depth += 1

    def _module_ran(self, module, inputs, output):
        self._depth -= 1
        if self._depth == 0:  # the module the reference called, not the layers it runs inside
            self.names |= _torch_class(type(module))

    def __enter__(self):
        self._depth = 0
        self._hooks = [torch.nn.modules.module.register_module_forward_pre_hook(self._module_starts),
                       torch.nn.modules.module.register_module_forward_hook(self._module_ran)]
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._previous)
        for hook in self._hooks:
            hook.remove()
        return False
