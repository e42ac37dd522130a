"""The threading policy: one place decides how BLAS and numba share the cores.

On a small machine (2 cores here) threads are a first-order cost: OpenBLAS
workers spin for a while after each call, and a second thread pool (numba's,
OpenMP's) fighting them can make a training step several times slower. So:

* BLAS (NumPy's OpenBLAS) keeps its default: one thread per core. Matmuls
  are the largest ops of a step and scale well.
* numba kernels use the ``workqueue`` threading layer (no spinning OpenMP
  threads, and it cannot change torch's OpenMP thread count in the same
  process) and run *serially* below ``PARALLEL_MIN_ELEMENTS``: below that
  size, waking threads costs more than it saves.
* ``NEURAL_ARCH_NUM_THREADS`` caps both pools (e.g. 1 to share a machine).

``describe()`` reports the policy in force; ``neural-arch info`` prints it.
"""

from __future__ import annotations

import os

# Below this many elements a kernel runs on one thread (measured: see BENCHMARKS.md);
# NEURAL_ARCH_PARALLEL_MIN_ELEMENTS (a whole number) overrides it.
_env_min = os.environ.get("NEURAL_ARCH_PARALLEL_MIN_ELEMENTS", "").strip()
PARALLEL_MIN_ELEMENTS = int(_env_min) if _env_min.isdigit() else 1 << 20


def num_threads() -> int:
    env = os.environ.get("NEURAL_ARCH_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


def configure_numba() -> None:
    """Set numba's threading layer and thread count before numba is imported."""
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    os.environ.setdefault("NUMBA_NUM_THREADS", str(num_threads()))


def configure_blas() -> None:
    """Apply ``NEURAL_ARCH_NUM_THREADS`` to BLAS too, when threadpoolctl is installed."""
    env = os.environ.get("NEURAL_ARCH_NUM_THREADS")
    if not env:
        return
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return
    threadpool_limits(num_threads(), user_api="blas")


def blas_info() -> list[dict]:
    """What BLAS NumPy uses: library, version, kernel architecture, threads."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:
        return []
    return [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def blas_warning() -> str | None:
    """A warning when a slow BLAS kernel was forced (e.g. Haswell on an AVX-512 machine)."""
    flags = cpu_flags()
    for info in blas_info():
        arch = (info.get("architecture") or "").lower()
        if "avx512f" in flags and arch in ("haswell", "sandybridge", "prescott", "nehalem"):
            return (f"OpenBLAS runs its {info['architecture']} kernel on a CPU with AVX-512 "
                    "(OPENBLAS_CORETYPE is probably set): matmuls may be up to 2x slower")
    return None


def describe() -> dict:
    from neural_arch.backend import kernels  # noqa: PLC0415

    return {
        "cores": os.cpu_count(),
        "threads": num_threads(),
        "blas": blas_info(),
        "jit": "numba" if kernels.get() is not None else "off (NumPy reference kernels)",
        "numba_threading_layer": os.environ.get("NUMBA_THREADING_LAYER"),
        "parallel_min_elements": PARALLEL_MIN_ELEMENTS,
    }
