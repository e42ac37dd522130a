"""The threading policy: one place decides how BLAS and our kernels share the cores.

On a small machine (2 cores here) threads are a first-order cost: OpenBLAS
workers spin for a while after each call, and a second thread pool fighting
them can make a training step several times slower. So:

* BLAS (NumPy's OpenBLAS) keeps its default: one thread per core. Matmuls
  are the largest ops of a step and scale well.
* The numba kernels are compiled serially (numba's own pool is not used: its
  ``workqueue`` layer was measured at 50-170 us a call and slower than one
  thread on a layer norm of 2M floats, its ``omp`` layer spins against
  OpenBLAS). A kernel call of at least ``PARALLEL_MIN_ELEMENTS`` is cut into
  row ranges and :func:`run_split` runs them at once: the first on the calling
  thread, the others on persistent helper threads. The kernels release the
  GIL, so the slices really run in parallel; waking a helper costs ~25 us,
  which is why small calls stay on one thread.
* ``NEURAL_ARCH_NUM_THREADS`` caps both (e.g. 1 to share a machine).

``describe()`` reports the policy in force; ``neural-arch info`` prints it.
"""

from __future__ import annotations

import os
import threading

# Below this many elements a kernel runs on one thread (measured: see BENCHMARKS.md);
# NEURAL_ARCH_PARALLEL_MIN_ELEMENTS (a whole number) overrides it.
_env_min = os.environ.get("NEURAL_ARCH_PARALLEL_MIN_ELEMENTS", "").strip()
PARALLEL_MIN_ELEMENTS = int(_env_min) if _env_min.isdigit() else 1 << 20


_CORES = os.cpu_count() or 1  # os.cpu_count() reads /sys: ~8 us, too slow to ask on every kernel call


def num_threads() -> int:
    env = os.environ.get("NEURAL_ARCH_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return _CORES


class _Helper:
    """One persistent thread that runs ``fn(*args)`` when started and signals when done.
    Two locks make the hand-off: ``_go`` is released to start a job, ``_done`` when it ends."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job, self._error = None, None
        threading.Thread(target=self._loop, daemon=True, name="neural-arch-kernels").start()

    def _loop(self):
        while True:
            self._go.acquire()
            fn, args = self._job
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by join()
                self._error = exc
            self._job = None
            self._done.release()

    def start(self, fn, args) -> None:
        self._error, self._job = None, (fn, args)
        self._go.release()

    def join(self) -> BaseException | None:
        self._done.acquire()
        return self._error


_helpers: list = []
_helpers_pid = None  # a forked child (a DataLoader worker) inherits the list but not the threads
_in_use = threading.Lock()


def run_split(fn, jobs: list) -> None:
    """``fn(*args)`` for every ``args`` in ``jobs``, at the same time: the first on this thread,
    the rest on helper threads. ``fn`` must release the GIL (our kernels are ``nogil``) and the
    jobs must write to disjoint memory. If another thread is already using the helpers, the jobs
    run one after another here instead."""
    global _helpers, _helpers_pid
    if len(jobs) == 1 or not _in_use.acquire(blocking=False):
        for args in jobs:
            fn(*args)
        return
    try:
        if _helpers_pid != os.getpid():
            _helpers, _helpers_pid = [], os.getpid()
        while len(_helpers) < len(jobs) - 1:
            _helpers.append(_Helper())
        started = _helpers[: len(jobs) - 1]
        for helper, args in zip(started, jobs[1:]):
            helper.start(fn, args)
        try:
            fn(*jobs[0])
        finally:
            try:
                errors = [e for e in (h.join() for h in started) if e is not None]
            except BaseException:  # interrupted (Ctrl-C) while a helper may still run: never reuse them
                _helpers = []
                raise
        if errors:
            raise errors[0]
    finally:
        _in_use.release()


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
    from neural_arch.backend import kernels, memory  # noqa: PLC0415

    return {
        "cores": os.cpu_count(),
        "threads": num_threads(),
        "blas": blas_info(),
        "jit": "numba" if kernels.get() is not None else "off (NumPy reference kernels)",
        "parallel_min_elements": PARALLEL_MIN_ELEMENTS,
        "memory": memory.describe(),
    }
