"""``python -m benchmarks coverage``: which of PyTorch's public names neural-arch has, per namespace,
computed from torch's own namespaces (no hand-kept list), with the parity test of each present
name taken from the record a test run wrote (``build/parity-record.json``, see
``tests/parity_record.py``): a name counts as parity-tested only if an existing test's passing
comparison (``parity.check``, or ``parity.compare`` after ``parity.reference()``) used it as the torch
reference. Writes ``docs/coverage.md`` and prints its summary.

What counts as "ours": the name resolves in drop-in mode (``neural_arch.compat``): ``torch.X``
through ``neural_arch`` (plus compat's own torch entries: ``save``, ``cuda``, ...), ``torch.nn.X``
through ``neural_arch.nn``, and so on (``compat.facade.TARGETS``); ``Tensor.X`` is an attribute
of ``neural_arch.Tensor``.

The public names of a namespace: its ``__all__`` when it has one, else ``dir()``; then the
exclusion rules below take out what is internal or specific to CUDA, sparse tensors,
quantization or distributed training. Each rule is a regular expression over the name or a
test of the object, listed on the page.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "coverage.md"

# label, torch module (None: torch.Tensor's methods), the drop-in name of the namespace, its target
NAMESPACES = [
    ("torch", "torch"), ("torch.nn", "torch.nn"), ("torch.nn.functional", "torch.nn.functional"),
    ("torch.optim", "torch.optim"), ("torch.optim.lr_scheduler", "torch.optim.lr_scheduler"),
    ("torch.linalg", "torch.linalg"), ("torch.fft", "torch.fft"), ("torch.utils.data", "torch.utils.data"),
    ("torch.distributions", "torch.distributions"), ("Tensor methods", None),
]

# (reason, pattern over the name); the first rule that matches excludes the name
NAME_RULES = [
    ("CUDA/accelerator-specific", r"cuda|cudnn|miopen|mkldnn|(^|_)mps|xpu|(^|_)hip|nccl|tf32|cufft|cublas|nnpack|"
                                  r"vulkan|metal|mtia|hpu|xla|ipu|(^|_)mkl|onednn|pin_memory|is_pinned|cpu_fused|"
                                  r"fused_|_fused|record_stream|to_dlpack|from_dlpack|__dlpack"),
    # named one by one: each has no CPU kernel in torch 2.13 (tests/bench/test_coverage.py calls it on the CPU
    # and expects NotImplementedError), so no CPU program can call it; F.scaled_mm and F.grouped_mm do run
    # on the CPU and are counted
    ("CUDA-only (torch has no CPU kernel for it)", r"^scaled_grouped_mm$"),
    ("sparse-specific", r"sparse|(^|_)coo|csr|csc|bsr|bsc|nnz|coalesce|^indices$|^values$|crow_|ccol_|row_indices|"
                        r"col_indices|to_dense|smm$|^hspmm$|^sspaddmm$|saddmm"),
    ("quantization-specific", r"quant|qint|quint|qscheme|q_per|q_scale|q_zero|int_repr|fbgemm|fake_quant|"
                              r"per_channel|per_tensor|qconfig|prepack|(^|_)qr_$|^q_|^is_quantized"),
    ("distributed-specific", r"distributed|SyncBatchNorm|DataParallel|(^|_)rpc|c10d|process_group"),
    ("internal", r"^_"),
    ("deprecated (torch.utils.data's DataPipes, deprecated since torch 2.4)",
     r"DataPipe|DataChunk|datapipe|runtime_validation|argument_validation|^non_deterministic$"),
    ("internal (TorchScript/JIT, aten's native and backward entry points, autocast bookkeeping, the "
     "functionalization *_copy twins of view ops)",
     r"^Script|^native_|_backward|^batch_norm_(elemt|gather|stats|update)|nesting$|^parse_|^import_ir|"
     r"^merge_type|_copy$|^fork$|^wait$"),
]


def _object_rule(name: str, obj) -> str | None:
    """Exclusions decided by the object, not the name (imports, TorchScript/JIT internals, ...)."""
    if isinstance(obj, types.ModuleType):
        return "a namespace (listed on its own or out of scope)"
    if type(obj).__name__ == "pybind11_type" or type(type(obj)).__name__ == "pybind11_type":
        return "internal"  # C++ binding types and enums: TorchScript/JIT IR, dispatcher, profiler
    module = getattr(obj, "__module__", None) or ""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        if module and not module.startswith("torch"):
            return "internal"  # an import (typing, collections, ...), not torch's API
        if module.startswith("torch._C") or module.startswith("torch.jit") or module.startswith("torch._"):
            return "internal"  # TorchScript/JIT and C++ binding types, private modules' helpers
    if re.search(r"Storage$", name):
        return "internal"  # storages: the memory under tensors, not an API scripts use
    return None


def exclusion(name: str, obj) -> str | None:
    """Why ``name`` is left out of the count, or None if it counts."""
    for reason, pattern in NAME_RULES:
        if re.search(pattern, name):
            return reason
    return _object_rule(name, obj)


def public_names(module) -> list[str]:
    """The namespace's public names: ``__all__`` if it has one, else ``dir()`` without leading underscores."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return sorted(set(names))


def tensor_names() -> list[str]:
    """``torch.Tensor``'s public attributes (methods and properties)."""
    import torch

    return sorted(n for n in dir(torch.Tensor) if not n.startswith("_"))


def ours_has(namespace: str | None, name: str) -> bool:
    """Whether drop-in mode resolves ``namespace.name`` (``Tensor.name`` when ``namespace`` is None)."""
    if namespace is None:
        from neural_arch import Tensor

        return hasattr(Tensor, name)
    from neural_arch.compat import facade

    return facade.provides(namespace, name)


# -- each name's parity test: the record a test run wrote (tests/parity_record.py) ---------------------------
def _test_exists(test_id: str, root: Path) -> bool:
    """Whether the test function of a pytest id (``tests/a/test_b.py::[Class::]test_c[param]``) is still there."""
    path, *parts = test_id.split("::")
    function = parts[-1].split("[")[0] if parts else ""
    file = root / path
    if not function or not file.is_file():
        return False
    return re.search(rf"def {re.escape(function)}\(", file.read_text()) is not None


def load_record(root: Path = ROOT, path: Path | None = None) -> dict[str, str]:
    """torch's qualified name (``torch.add``, ``torch.Tensor.sum``, ``torch.nn.Linear``) -> the first existing
    test whose passing ``parity.check`` called it as the reference. Empty when no test run wrote a record."""
    path = path or root / "build" / "parity-record.json"
    try:
        tests = json.loads(path.read_text()).get("tests", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    found: dict[str, str] = {}
    for test_id, names in sorted(tests.items()):
        if _test_exists(test_id, root):
            for name in names:
                found.setdefault(name, test_id)
    return found


def qualified(label: str, name: str) -> str:
    """The name a namespace's entry has in the record."""
    return f"torch.Tensor.{name}" if label == "Tensor methods" else f"{label}.{name}"


def find_test(label: str, name: str, record: dict[str, str]) -> str | None:
    """The test whose passing comparison used ``label.name`` as its reference, or None."""
    return record.get(qualified(label, name))


# -- the report --------------------------------------------------------------------------------------------
def namespace_report(label: str, names: list[str], objects: dict, has, record: dict[str, str]) -> dict:
    """Counts and rows for one namespace. ``objects[name]`` is torch's object, ``has(name)`` whether we
    have it, ``record`` what ``load_record`` returns. Rows: (name, status, test or None) with status "yes",
    "no" or the exclusion reason."""
    rows = []
    for name in names:
        reason = exclusion(name, objects.get(name))
        if reason is not None:
            rows.append((name, reason, None))
        elif has(name):
            rows.append((name, "yes", find_test(label, name, record)))
        else:
            rows.append((name, "no", None))
    counted = [r for r in rows if r[1] in ("yes", "no")]
    present = [r for r in counted if r[1] == "yes"]
    return {"label": label, "rows": rows, "public": len(rows), "considered": len(counted), "present": len(present),
            "tested": sum(1 for r in present if r[2]),
            "percent": 100.0 * len(present) / len(counted) if counted else 0.0}


def collect(root: Path = ROOT) -> list[dict]:
    """One report per namespace of ``NAMESPACES``."""
    import torch  # noqa: F401  (the reference: its namespaces are what is counted)

    record = load_record(root)
    reports = []
    for label, module_name in NAMESPACES:
        if module_name is None:
            import torch as t

            names = tensor_names()
            objects = {n: getattr(t.Tensor, n, None) for n in names}
        else:
            module = importlib.import_module(module_name)
            names = public_names(module)
            objects = {n: getattr(module, n, None) for n in names}
        reports.append(namespace_report(label, names, objects, lambda n, m=module_name: ours_has(m, n), record))
    return reports


def summary(reports: list[dict]) -> str:
    """The per-namespace table (Markdown)."""
    lines = ["| namespace | public names | excluded | counted | present | coverage | "
             "present with a recorded parity test |",
             "|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| `{r['label']}` | {r['public']} | {r['public'] - r['considered']} | {r['considered']} | "
                     f"{r['present']} | {r['percent']:.1f}% | {r['tested']} |")
    return "\n".join(lines)


def record_note(path: Path | None = None) -> str:
    """One line on the record the parity column was read from."""
    path = path or ROOT / "build" / "parity-record.json"
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return "No parity record was found: run the tests (`pytest tests`) to write one, then this report again."
    return (f"Parity record: {len(record.get('tests', {}))} passing tests with a comparison, last merged "
            f"{record.get('written', '?')}.")


def render(reports: list[dict]) -> str:
    """The whole page."""
    import torch

    out = [
        "# PyTorch API coverage",
        "",
        f"Written by `python -m benchmarks coverage` against torch {torch.__version__}: every public name of the "
        "namespaces below, taken from torch itself (`__all__`, else `dir()`), and whether neural-arch has it. "
        "\"Present\" means the name resolves in drop-in mode (`python -m neural_arch.compat`): `torch.X` through "
        "`neural_arch`, `torch.nn.X` through `neural_arch.nn`, and so on; `Tensor.X` on `neural_arch.Tensor`. "
        "The parity test column names the first test whose passing comparison (`parity.check`, or `parity.compare` "
        "after a `parity.reference()` block) used the torch name as its reference (a function or Tensor method it "
        "called, a module it ran, an optimizer, scheduler, dataset, sampler, loader or distribution it built), as "
        "recorded by the last test runs (`build/parity-record.json`, written by pytest through "
        "`tests/parity_record.py`; a test that no longer exists is dropped). A present name with no recorded "
        "comparison says \"none recorded\": either no test compares it, or the tests that "
        "do have not run since the record was reset.",
        "",
        record_note(),
        "",
        "## Summary",
        "",
        summary(reports),
        "",
        "## Exclusion rules",
        "",
        "A name is left out of the count when the first matching rule says so (regular expressions over the name):",
        "",
    ]
    for reason, pattern in NAME_RULES:
        out.append(f"- **{reason}**: `{pattern}`")
    out += [
        "- **internal** (by the object): a class or function defined outside torch (an import such as `Any`), "
        "or in `torch._C`, `torch.jit` or a private `torch._*` module, or a pybind11 binding type or enum value "
        "(TorchScript/JIT IR, dispatcher and profiler types); `*Storage` classes.",
        "- **a namespace**: a submodule (`torch.nn` inside `torch`); the ones in scope have their own section.",
        "",
    ]
    for r in reports:
        out += [f"## `{r['label']}`", "", f"{r['present']} of {r['considered']} ({r['percent']:.1f}%).", "",
                "| name | neural-arch | parity test |", "|---|---|---|"]
        for name, status, test in r["rows"]:
            if status in ("yes", "no"):
                cell = (test or ("none recorded" if status == "yes" else "")).replace("|", "\\|")  # ids may hold a |
                out.append(f"| `{name}` | {status} | {cell} |")
        excluded = [(n, s) for n, s, _ in r["rows"] if s not in ("yes", "no")]
        if excluded:
            out += ["", "<details><summary>Excluded names</summary>", "",
                    ", ".join(f"`{n}` ({s})" for n, s in excluded), "", "</details>"]
        out.append("")
    return "\n".join(out)


def run(rounds: int | None = None, page: Path = PAGE) -> str:
    """Write the page; return the summary (what `python -m benchmarks coverage` prints)."""
    reports = collect()
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render(reports))
    return summary(reports) + f"\n\n(full lists: {page.relative_to(ROOT) if page.is_relative_to(ROOT) else page})"
