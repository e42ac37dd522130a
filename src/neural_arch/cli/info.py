"""What ``neural-arch info`` reports: versions, the BLAS NumPy uses, devices, optional extras."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import re

import click
import numpy as np

from neural_arch.backend import cuda_is_available, kernels, memory, threads

# Packages we use when present without any extra asking for them
OPTIONAL = ["numba", "threadpoolctl"]


def _requirements() -> list[str]:
    """neural-arch's requirements as its installed metadata lists them (pyproject.toml); none without it."""
    try:
        return importlib.metadata.requires("neural-arch") or []
    except importlib.metadata.PackageNotFoundError:
        return []


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def extras() -> dict[str, list[str]]:
    """extra -> the distributions it requires, from the installed package's metadata (pyproject.toml)."""
    out: dict[str, list[str]] = {}
    for req in _requirements():
        if "extra ==" not in req:
            continue
        spec, _, marker = req.partition(";")
        extra = marker.split("extra ==")[1].strip().strip("\"'")
        name = re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0]
        if extra != "dev" and not name.startswith("neural-arch"):
            out.setdefault(extra, []).append(name)
    return out


def _importable(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        return None
    return getattr(mod, "__version__", None) or "installed"


def blas_info() -> str:
    libs = [f"{i['internal_api']} {i.get('version') or ''}, {i.get('architecture')} kernel, "
            f"{i['num_threads']} threads".replace("  ", " ") for i in threads.blas_info()]
    if libs:  # threadpoolctl sees the library actually loaded, its kernel and its threads
        warning = threads.blas_warning()
        return ", ".join(libs) + (f"  WARNING: {warning}" if warning else "")
    try:  # NumPy >= 1.25 describes its build
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy: no structured config
        return "unknown"


def threading_policy() -> str:
    d = threads.describe()
    knobs = ", ".join(f"{k}={v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k}={v}"
                      for k, v in d.items() if k not in ("cores", "blas_in_our_calls", "hand_off", "products"))
    jit = "numba" if kernels.active() else "off (NumPy reference kernels)"
    return (f"{d['num_threads']} threads on {d['cores']} cores; our products: {d['products']}; "
            f"BLAS in our calls: {d['blas_in_our_calls']}; "
            f"kernels: {jit}; hand-off: {d['hand_off']}; memory: {memory.describe()} "
            f"(applied at the first op); policy: {knobs}")


def devices() -> str:
    found = ["cpu"]
    if cuda_is_available():
        import cupy  # noqa: PLC0415 - optional: the cuda extra

        found += [f"cuda:{i}" for i in range(cupy.cuda.runtime.getDeviceCount())]
        return ", ".join(found)
    reason = "CuPy not installed" if _importable("cupy") is None else "CuPy installed but no usable GPU"
    return f"cpu (cuda: no, {reason})"


def collect_info() -> dict[str, str]:
    found_extras = []
    for extra, dists in extras().items():
        found = [d for d in dists if _version(d) is not None]
        state = "yes" if len(found) == len(dists) else ("partly: " + ", ".join(found) if found else "no")
        found_extras.append(f"{extra} ({state})")
    optional = [f"{m} {_importable(m)}" if _importable(m) else f"{m} (no)" for m in OPTIONAL]
    return {
        "neural-arch": importlib.metadata.version("neural-arch"),
        "python": f"{platform.python_version()} ({platform.system()} {platform.machine()})",
        "numpy": np.__version__,
        "blas": blas_info(),
        "threading": threading_policy(),
        "devices": devices(),
        "extras": ", ".join(found_extras) or "unknown (package metadata not found)",
        "optional": ", ".join(optional),
    }


def package_versions() -> dict[str, str]:
    """Installed versions of neural-arch, its requirements and every extra's packages (what a run records)."""
    names = ["neural-arch", "numpy"]
    for req in _requirements():
        name = re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0]
        if name and not name.startswith("neural-arch") and name not in names:
            names.append(name)
    return {name: _version(name) or "not installed" for name in names}


@click.command(short_help="Versions, BLAS, devices, optional extras.")
def info() -> None:
    """Versions, BLAS, devices and which optional extras are installed."""
    for key, value in collect_info().items():
        click.echo(f"{key + ':':<14}{value}")
