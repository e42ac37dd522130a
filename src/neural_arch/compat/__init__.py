"""Layer 8: drop-in mode. Run an unmodified PyTorch script on neural-arch.

    python -m neural_arch.compat train.py --epochs 3     # the script's `import torch` gets neural-arch

or, in a notebook, before the first ``import torch``::

    import neural_arch.compat
    neural_arch.compat.install()
    import torch                                          # neural-arch, under torch's names

``install()`` puts an import hook (a ``sys.meta_path`` finder) first in line, so that ``torch``
and every ``torch.*`` module resolve to neural-arch (``torch.nn`` -> ``neural_arch.nn``,
``torch.utils.data`` -> ``neural_arch.utils.data``, ...; the table is ``facade.TARGETS``).
Device queries answer as torch does on a machine with no accelerator (``devices.py``);
``torch.save``/``torch.load`` write and read safetensors files (``serialization.py``).

A torch name neural-arch does not have raises ``MissingFeatureError`` (an ``AttributeError``,
so ``hasattr`` works) naming it and pointing at the coverage page: on module attributes
(``torch.X``, ``torch.nn.X``, ``F.X``, ...) and on tensor methods (``x.X``). A ``from torch
import X`` of a missing name is an ImportError, as in Python always; its message ends with
the coverage page.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

from neural_arch.autograd.tensor import Tensor
from neural_arch.compat import devices, serialization  # noqa: F401  (register the special modules)
from neural_arch.compat.facade import Facade, build, missing
from neural_arch.errors import ConfigError

__all__ = ["install", "is_installed", "uninstall"]


class _TorchFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torch`` and ``torch.*`` and builds their facades."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return build(spec.name)

    def exec_module(self, module) -> None:
        return None


_finder = _TorchFinder()


def _tensor_getattr(self, name: str):
    # only reached when normal lookup fails: a Tensor method or attribute we do not have
    if name.startswith("_"):
        raise AttributeError(f"'Tensor' object has no attribute {name!r}")
    raise missing(f"torch.Tensor.{name}")


def is_installed() -> bool:
    """Whether drop-in mode is on in this process."""
    return _finder in sys.meta_path


def install() -> None:
    """Make ``import torch`` (and its submodules) resolve to neural-arch in this process.
    Call it before anything imports torch; calling it twice is harmless."""
    if is_installed():
        return
    real = sys.modules.get("torch")
    if real is not None and not isinstance(real, Facade):
        raise ConfigError("neural_arch.compat.install(): PyTorch is already imported in this process, so "
                          "`import torch` would keep returning it. Call install() before the first "
                          "`import torch` (restart the interpreter or notebook kernel)")
    sys.meta_path.insert(0, _finder)
    if "__getattr__" not in Tensor.__dict__:
        Tensor.__getattr__ = _tensor_getattr


def uninstall() -> None:
    """Turn drop-in mode off: forget the facades; the next ``import torch`` finds PyTorch, if installed."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n, m in sys.modules.items() if isinstance(m, Facade)]:
        del sys.modules[name]
    if Tensor.__dict__.get("__getattr__") is _tensor_getattr:
        del Tensor.__getattr__
