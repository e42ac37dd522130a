"""The module objects that stand in for ``torch`` and its submodules in drop-in mode.

A ``Facade`` is a module named like torch's (``torch.nn.functional``) that answers an attribute
from, in order: its own entries (torch behaviour we give on purpose: ``torch.save``,
``torch.cuda``), a torch submodule we map (``torch.nn`` -> ``neural_arch.nn``), the neural-arch
module it wraps, then a few fallbacks. Anything else raises ``MissingFeatureError`` naming the
torch name and pointing at the coverage page, at the line of the script that asked for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import types

from neural_arch.compat import torch_top
from neural_arch.compat.registry import SPECIAL
from neural_arch.errors import MissingFeatureError, NeuralArchError

COVERAGE_PAGE = "docs/coverage.md"

# torch module -> the neural-arch module that provides it (imported when first asked for)
TARGETS = {
    "torch": "neural_arch",
    "torch.nn": "neural_arch.nn",
    "torch.nn.functional": "neural_arch.nn.functional",
    "torch.nn.init": "neural_arch.nn.init",
    "torch.nn.parameter": "neural_arch.nn.parameter",
    "torch.nn.modules": "neural_arch.nn.modules",
    "torch.nn.utils": "neural_arch.nn.utils",
    "torch.nn.utils.rnn": "neural_arch.nn.utils.rnn",
    "torch.nn.utils.parametrize": "neural_arch.nn.utils.parametrize",
    "torch.nn.utils.parametrizations": "neural_arch.nn.utils.parametrizations",
    "torch.optim": "neural_arch.optim",
    "torch.optim.lr_scheduler": "neural_arch.optim.lr_scheduler",
    "torch.utils": "neural_arch.utils",
    "torch.utils.data": "neural_arch.utils.data",
    "torch.utils.checkpoint": "neural_arch.utils.checkpoint",
    "torch.autograd": "neural_arch.autograd",
    "torch.linalg": "neural_arch.linalg",
    "torch.fft": "neural_arch.fft",
    "torch.distributions": "neural_arch.distributions",
    "torch.amp": "neural_arch.amp",
}


def missing(name: str) -> MissingFeatureError:
    """The one error for a torch name neural-arch lacks."""
    return MissingFeatureError(
        f"{name} is not available in neural-arch's drop-in mode: neural-arch has no equivalent of it yet. "
        f"See {COVERAGE_PAGE} (`python -m benchmarks coverage`) for the torch names that are covered, or "
        "rewrite this line with one of them"
    )


class MissingModuleError(NeuralArchError, ModuleNotFoundError):
    """A torch module neural-arch has no counterpart of (``import torch.jit`` in drop-in mode)."""


def target_of(name: str) -> str | None:
    """The neural-arch module behind torch module ``name``: from ``TARGETS``, or below a mapped
    module other than ``torch`` itself, the neural-arch submodule of the same name if there is one
    (``torch.nn.modules.loss`` -> ``neural_arch.nn.modules.loss``). None if there is none."""
    if name in TARGETS:
        return TARGETS[name]
    parent, _, leaf = name.rpartition(".")
    if parent == "torch" or parent not in TARGETS and target_of(parent) is None:
        return None
    candidate = f"{target_of(parent)}.{leaf}"
    return candidate if _exists(candidate) else None


def is_known(name: str) -> bool:
    """Whether drop-in mode provides torch module ``name``."""
    return name in SPECIAL or target_of(name) is not None


class Facade(types.ModuleType):
    """A torch module in drop-in mode; see the module docstring for where names come from."""

    def __init__(self, name: str, target=None, own: dict | None = None, fallbacks: dict | None = None):
        super().__init__(name, getattr(target, "__doc__", None))
        self.__path__ = []  # a package: its submodules are imported through the finder too
        # CPython puts __file__ into "cannot import name X from torch (...)": make that message useful
        self.__file__ = f"neural-arch drop-in mode; see {COVERAGE_PAGE}"
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_fallbacks", dict(fallbacks or {}))
        for key, value in (own or {}).items():
            setattr(self, key, value)

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        sub = f"{self.__name__}.{attr}"
        if sub in TARGETS or sub in SPECIAL:
            try:
                return importlib.import_module(sub)
            except MissingModuleError:
                raise missing(sub) from None
        target = self.__dict__.get("_target")
        if target is not None and not attr.startswith("_"):
            try:
                value = getattr(target, attr)
            except AttributeError:
                pass
            else:
                # a neural-arch module under a name torch uses for another module (na.distributed is not
                # torch.distributed): only mapped modules are handed out
                if not isinstance(value, types.ModuleType) or is_known(sub):
                    return value
        if attr in self._fallbacks:
            return self._fallbacks[attr]
        raise missing(sub)

    def __dir__(self):
        target = self.__dict__.get("_target")
        names = set(self.__dict__) | set(self._fallbacks)
        if target is not None:
            names |= {n for n in dir(target) if not n.startswith("_")}
        return sorted(names)


def build(name: str) -> Facade:
    """The facade for torch module ``name``."""
    if name in SPECIAL:
        return Facade(name, None, SPECIAL[name]())
    target_name = target_of(name)
    if target_name is None:
        raise MissingModuleError(str(missing(name)), name=name)
    target = importlib.import_module(target_name)
    if name == "torch":
        return Facade(name, target, torch_top.own(), torch_top.fallbacks())
    return Facade(name, target)


def _exists(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def provides(module_name: str, attr: str) -> bool:
    """Whether drop-in mode resolves ``<module_name>.<attr>`` (e.g. ``provides("torch.nn", "LSTM")``),
    answered without importing anything under torch's names (the coverage report runs beside real torch)."""
    sub = f"{module_name}.{attr}"
    if sub in SPECIAL:
        return True
    if sub in TARGETS:
        return _exists(TARGETS[sub])
    if module_name in SPECIAL:
        return attr in SPECIAL[module_name]()
    target_name = target_of(module_name)
    if target_name is None or not _exists(target_name) or attr.startswith("_"):
        return False
    if module_name == "torch":
        if attr in torch_top.own() or attr in torch_top.fallbacks():
            return True
    value = getattr(importlib.import_module(target_name), attr, _MISSING)
    if value is _MISSING:
        return False
    return not isinstance(value, types.ModuleType) or is_known(sub)


_MISSING = object()
