"""The public names of neural-arch, found by walking the package (the API reference and its tests read this).

A *namespace* is a package (a folder with ``__init__.py``), a module that a package's ``__init__`` imports
by name (``from neural_arch.nn import functional`` makes ``neural_arch.nn.functional`` one), or an op
family (``neural_arch.ops.<family>``: its page shows each op's math). A namespace's public names are
its ``__all__`` when it has one, else the names it binds that do not start with ``_`` and come from
neural-arch (not ``np``, ``Path``, ...) and are not namespaces themselves.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = "neural_arch"
# internal machinery reached only through other names: no page of its own
SKIP_PREFIXES = ("neural_arch.cli.", "neural_arch.backend.kernels")
OPS = "neural_arch.ops"


@dataclass(frozen=True)
class Name:
    namespace: str  # where a user reaches it: neural_arch.nn
    name: str  # Linear
    obj: object

    @property
    def path(self) -> str:
        return f"{self.namespace}.{self.name}"


def _bound_module_names(package: types.ModuleType) -> set[str]:
    """Names the package's ``__init__`` binds with an import statement (not ``*``)."""
    source = Path(package.__file__).read_text(encoding="utf-8")
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


def _skipped(name: str) -> bool:
    return any(name == p.rstrip(".") or name.startswith(p) for p in SKIP_PREFIXES)


def namespaces() -> list[str]:
    """Every namespace of the package, sorted, the root first."""
    root = importlib.import_module(ROOT)
    found = {ROOT}
    for info in pkgutil.walk_packages(root.__path__, ROOT + "."):
        leaf = info.name.rsplit(".", 1)[1]
        if leaf.startswith("_") or _skipped(info.name):
            continue
        if info.ispkg:
            found.add(info.name)
        elif info.name.rsplit(".", 1)[0] == OPS and leaf != "tensor_methods":
            found.add(info.name)
    for name in sorted(found):
        module = importlib.import_module(name)
        if not hasattr(module, "__path__"):
            continue
        for bound in _bound_module_names(module):
            child = getattr(module, bound, None)
            if (isinstance(child, types.ModuleType) and child.__name__.startswith(name + ".")
                    and not bound.startswith("_") and not _skipped(child.__name__)):
                found.add(child.__name__)
    return sorted(found, key=lambda n: (n != ROOT, n))


def _ours(obj: object) -> bool:
    module = getattr(obj, "__module__", None)
    if module is None and not callable(obj):
        return True  # a value (a dtype, a constant): judged by where it is bound
    return isinstance(module, str) and (module == ROOT or module.startswith(ROOT + "."))


def _reexports(module: types.ModuleType) -> set[str]:
    """Names a module without ``__all__`` re-exports on purpose: those of its ``from x import *``
    lines, and those imported on a line marked ``noqa: F401`` (the codebase's re-export marker)."""
    source = Path(module.__file__).read_text(encoding="utf-8")
    lines = source.splitlines()
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if any(a.name == "*" for a in node.names):
            source_module = importlib.import_module(node.module)
            names |= set(getattr(source_module, "__all__", [n for n in vars(source_module) if not n.startswith("_")]))
        elif "F401" in lines[node.end_lineno - 1] or "F401" in lines[node.lineno - 1]:
            names |= {a.asname or a.name for a in node.names}
    return names


def _is_op_function(obj: object) -> bool:
    from neural_arch.autograd.function import Function  # noqa: PLC0415 - after the path is set

    return inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function


def public_names(namespace: str) -> list[Name]:
    """The public names of one namespace, in ``__all__`` order or sorted.

    Without an ``__all__``, a module's names are those defined in it (or, for the root, anywhere in
    neural-arch). An op's ``Function`` class is not a public name: its op family's page shows its math.
    """
    module = importlib.import_module(namespace)
    explicit = getattr(module, "__all__", None)
    if explicit is not None:
        candidates = [(n, getattr(module, n)) for n in explicit]
    else:
        exported = _reexports(module)
        candidates = [(n, obj) for n, obj in sorted(vars(module).items())
                      if not n.startswith("_") and n != "annotations" and _ours(obj)
                      and (namespace == ROOT or n in exported
                           or getattr(obj, "__module__", namespace).startswith(namespace))]
    return [Name(namespace, n, obj) for n, obj in candidates
            if not isinstance(obj, types.ModuleType) and not _is_op_function(obj)]


def home(obj: object) -> str | None:
    """Where a class or function is defined (``module.qualname``), or None for a value."""
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    return None


def op_functions(family: str) -> list[type]:
    """The ``Function`` classes an op family defines: the math its page shows."""
    from neural_arch.autograd.function import Function  # noqa: PLC0415 - after the path is set

    module = importlib.import_module(family)
    return [obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, Function) and obj.__module__ == family]


# DESIGN.md's layers (tests/test_layering.py holds the same table): the reference's sections
LAYERS = {
    "errors": 0, "backend": 1, "autograd": 2, "ops": 3,
    "nn": 4, "optim": 4, "amp": 4, "graph": 4, "linalg": 4, "fft": 4, "distributions": 4,
    "data": 5, "io": 5, "onnx": 5, "compile": 5, "utils": 5,
    "models": 6, "train": 7, "distributed": 7, "viz": 7, "config": 8, "cli": 8, "serve": 8, "compat": 8,
}
# namespaces that gather names documented elsewhere: they link, they render only what is theirs alone
INDEX_NAMESPACES = (ROOT, OPS)


def layer(namespace: str) -> int | None:
    """The DESIGN.md layer of a namespace (None for the package root)."""
    parts = namespace.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def is_op_family(namespace: str) -> bool:
    return namespace.rsplit(".", 1)[0] == OPS


def _priority(namespace: str) -> tuple:
    """Where an object reachable from several namespaces is documented: an op family first, then the
    shortest namespace; the index namespaces last."""
    return (namespace in INDEX_NAMESPACES, not is_op_family(namespace), namespace.count("."), len(namespace))


def _shareable(obj: object) -> bool:
    return not isinstance(obj, int | float | str | bytes | bool | tuple | type(None))


def primary_locations(all_names: dict[str, list[Name]]) -> dict[int, Name]:
    """For each object (by identity) the one name under which the reference documents it: in the
    module that defines it if that is a namespace, else by ``_priority``; under its own name first
    (``ModernTransformer``, not its alias ``LlamaForCausalLM``)."""
    candidates: dict[int, list[Name]] = {}
    for namespace in all_names:
        for entry in all_names[namespace]:
            if _shareable(entry.obj):
                candidates.setdefault(id(entry.obj), []).append(entry)

    def rank(e: Name) -> tuple:
        return (getattr(e.obj, "__module__", None) != e.namespace, _priority(e.namespace),
                getattr(e.obj, "__name__", None) != e.name)

    return {key: min(entries, key=rank) for key, entries in candidates.items()}


def documented_at(entry: Name, primary: dict[int, Name]) -> Name:
    """The name under which ``entry``'s object is documented (itself when it is the primary one)."""
    return primary.get(id(entry.obj), entry) if _shareable(entry.obj) else entry
