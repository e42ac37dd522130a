"""The layers of DESIGN.md stay true: every import in ``src/`` is read (ast) and checked.

A module's layer is its package's (the table below, DESIGN.md's order). The test fails on
* an import that goes up a layer (a module may import its own layer and those below);
* ``import neural_arch`` (as ``na`` or not) or ``from neural_arch import <name>`` of something that is
  not a subpackage, inside the package: import from the layer instead;
* ``models`` importing ``optim``;
* an import cycle between modules, except the one DESIGN.md tolerates: ``Tensor`` (autograd/tensor.py)
  reaching the ops through its single registration point.
Function-local imports count: they run too. A package not in the table fails until it is placed.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "neural_arch"

LAYERS = {
    "errors": 0,
    "backend": 1,
    "autograd": 2,
    "ops": 3,
    "nn": 4, "optim": 4, "amp": 4, "graph": 4,
    "linalg": 4, "fft": 4, "distributions": 4,
    "data": 5, "io": 5, "onnx": 5, "compile": 5, "utils": 5,
    "models": 6,
    "train": 7, "distributed": 7, "viz": 7,
    "config": 8, "cli": 8, "serve": 8, "compat": 8,
    # the package facade (neural_arch/__init__.py, __main__.py) re-exports every layer: above them all
    "": 9,
}

# The one tolerated loop (DESIGN.md): Tensor's methods reach the ops through one registration point,
# so that ops can import Tensor. Cycles are tolerated only if every module in them is one of these.
TOLERATED_CYCLE = {"neural_arch.autograd.tensor", "neural_arch.ops"}

def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / ROOT).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top not in LAYERS:
        raise AssertionError(f"{module}: package {top!r} has no layer; add it to LAYERS (DESIGN.md's table)")
    return LAYERS[top]


def _package(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> list[tuple[str, int, str]]:
    """(imported module, line, how it was written) for every import of ours in ``module``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    found.append((_resolve(alias.name), node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from its package, one level up per extra dot
                base = _package(module).split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != ROOT and not target.startswith(ROOT + "."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                written = f"from {target} import {alias.name}"
                found.append((sub if sub in MODULES else _resolve(target), node.lineno, written))
    return found


def _resolve(name: str) -> str:
    """The longest module of ours that ``name`` names (an attribute path ends at its module)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _graph() -> dict[str, set[str]]:
    return {m: {target for target, _, _ in _imports(m) if target != m} for m in MODULES}


def test_every_package_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_import_goes_up_a_layer():
    bad = []
    for module in MODULES:
        for target, line, written in _imports(module):
            if _layer(target) > _layer(module):
                bad.append(f"{MODULES[module].relative_to(SRC)}:{line}: {written} "
                           f"(layer {_layer(module)} imports layer {_layer(target)})")
    assert not bad, "imports that go up a layer (DESIGN.md):\n" + "\n".join(bad)


def test_no_import_of_the_package_itself_inside_it():
    bad = []
    for module in MODULES:
        if module == ROOT or module == f"{ROOT}.__main__":
            continue
        for target, line, written in _imports(module):
            if target == ROOT:
                bad.append(f"{MODULES[module].relative_to(SRC)}:{line}: {written}")
    assert not bad, "import from the layer, never the package (`import neural_arch as na`):\n" + "\n".join(bad)


def test_models_do_not_import_optim():
    bad = [f"{MODULES[m].relative_to(SRC)}:{line}: {written}"
           for m in MODULES if m.startswith(f"{ROOT}.models")
           for target, line, written in _imports(m) if target.startswith(f"{ROOT}.optim")]
    assert not bad, "models describe architectures; optimizers belong to training:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_but_the_tolerated_one():
    graph = _graph()
    bad = [cycle for cycle in _cycles(graph) if not set(cycle) <= TOLERATED_CYCLE]
    assert not bad, "import cycles (each line: modules that import each other round):\n" + "\n".join(
        " <-> ".join(c) for c in bad)


def test_the_checker_finds_what_it_looks_for():
    """The checker itself: a cycle, an upward import and the package import are all seen."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _layer(f"{ROOT}.models.gpt2") == 6 and _layer(f"{ROOT}.backend.threads") == 1
    assert _resolve(f"{ROOT}.backend.threads.policy") == f"{ROOT}.backend.threads"
    imports = {t for t, _, _ in _imports(f"{ROOT}.backend.gemm")}
    assert f"{ROOT}.backend.threads" in imports
