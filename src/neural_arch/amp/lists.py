"""The autocast op lists, read from the ops themselves (each ``Function`` declares ``autocast``)."""

from __future__ import annotations

import importlib
import pkgutil

from neural_arch import ops as ops_package
from neural_arch.autograd.function import Function


def ops_by_policy() -> dict:
    """``{policy: sorted op names}`` for every op in ``neural_arch.ops``; policy ``None`` = follows its inputs."""
    for info in pkgutil.iter_modules(ops_package.__path__):
        importlib.import_module(f"neural_arch.ops.{info.name}")
    found: dict = {}
    todo = [Function]
    while todo:
        for cls in todo.pop().__subclasses__():
            todo.append(cls)
            if cls.__module__.startswith("neural_arch.ops."):
                found.setdefault(cls.autocast, set()).add(cls.__name__)
    return {policy: sorted(names) for policy, names in found.items()}
