"""``python -m benchmarks coverage``: which of PyTorch's public names neural-arch has, per namespace,
computed from torch's own namespaces (no hand-kept list), with the parity test of each present
name found by searching the test suite. Writes ``docs/coverage.md`` and prints its summary.

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


# -- finding each name's parity test -----------------------------------------------------------------------
HINTS = {  # how a test refers to a namespace's names (the test must also use torch, the reference)
    "torch": r"(torch|na)\.{name}\b", "torch.nn": r"nn\.{name}\b", "torch.nn.functional": r"F\.{name}\b",
    "torch.optim": r"(optim\.{name}\b|[\"']{name}[\"'])", "torch.optim.lr_scheduler": r"(\.|[\"']){name}\b",
    "torch.linalg": r"linalg\.{name}\b", "torch.fft": r"fft\.{name}\b", "torch.utils.data": r"\b{name}\b",
    "torch.distributions": r"distributions\.{name}\b|\b{name}\(", "Tensor methods": r"\.{name}\b",
}


def load_tests(root: Path) -> dict[str, str]:
    """The text of every test file that uses torch (where parity tests live)."""
    out = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        text = path.read_text(errors="replace")
        if re.search(r"^\s*(import torch|from torch)", text, re.M):
            out[str(path.relative_to(root))] = text
    return out


def find_test(label: str, name: str, tests: dict[str, str]) -> str | None:
    """The first test file (by path) that refers to ``name`` the way tests of ``label`` do."""
    pattern = re.compile(HINTS[label].format(name=re.escape(name)))
    for path, text in tests.items():
        if pattern.search(text):
            return path
    return None


# -- the report --------------------------------------------------------------------------------------------
def namespace_report(label: str, names: list[str], objects: dict, has, tests: dict[str, str]) -> dict:
    """Counts and rows for one namespace. ``objects[name]`` is torch's object, ``has(name)`` whether we
    have it. Rows: (name, status, test or None) with status "yes", "no" or the exclusion reason."""
    rows = []
    for name in names:
        reason = exclusion(name, objects.get(name))
        if reason is not None:
            rows.append((name, reason, None))
        elif has(name):
            rows.append((name, "yes", find_test(label, name, tests)))
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

    tests = load_tests(root)
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
        reports.append(namespace_report(label, names, objects, lambda n, m=module_name: ours_has(m, n), tests))
    return reports


def summary(reports: list[dict]) -> str:
    """The per-namespace table (Markdown)."""
    lines = ["| namespace | public names | excluded | counted | present | coverage | present with a parity test |",
             "|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| `{r['label']}` | {r['public']} | {r['public'] - r['considered']} | {r['considered']} | "
                     f"{r['present']} | {r['percent']:.1f}% | {r['tested']} |")
    return "\n".join(lines)


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
        "The parity test column names the first test file (one that also uses torch as the reference) that "
        "refers to the name; a present name without one is listed as such.",
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
                out.append(f"| `{name}` | {status} | {test or ('none found' if status == 'yes' else '')} |")
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
