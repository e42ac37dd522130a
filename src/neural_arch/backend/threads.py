"""The threading policy: one pool of threads, ours, shares the cores between BLAS and our kernels.

On a small machine (2 cores here) threads are a first-order cost. OpenBLAS's
workers spin for about 0.1 s after each call, and a second pool beside them
gets its threads descheduled: with BLAS on its own two threads, a layer norm
of 4096x512 (forward+backward) took 1.4-2.0 ms right after matmuls and 0.8 ms
with nothing spinning; GELU on 1M floats 0.6 ms against 0.4 ms. So there is
one pool, ours:

* BLAS runs one thread per call (set at import, through threadpoolctl, on the
  BLAS library NumPy uses). A product of at least ``GEMM_SPLIT_FLOPS`` is cut
  into blocks of its output by ``backend.gemm.matmul``, one single-threaded
  BLAS call per thread.
* Elementwise NumPy calls of at least ``ufuncs.SPLIT_ELEMENTS`` (add, multiply, ... in
  ops/elementwise.py) are cut into row blocks the same way (``backend/ufuncs.py``): NumPy
  releases the GIL inside a ufunc's loop.
* The numba kernels are compiled serially (numba's own pool is not used: its
  ``workqueue`` layer was measured at 50-170 us a call and slower than one
  thread on a layer norm of 2M floats, its ``omp`` layer spins against
  OpenBLAS). A kernel call of at least ``PARALLEL_MIN_ELEMENTS`` is cut into
  row ranges. The kernels release the GIL, so the ranges really run at once.
* :func:`run_split` runs the blocks: the first on the calling thread, the
  others on persistent helper threads. A helper polls for its next job for
  ``SPIN_US`` after each one, and the caller polls for the helper to finish
  (``kernels/spin.py``), as OpenBLAS's and OpenMP's workers do: a hand-off then
  costs ~6 us instead of the 65-70 us of waking a thread that slept on a lock.
* Thresholds, measured on this machine (one thread vs split in two):
  products of 4.2 MFLOP break even (24 vs 21 us), 20 MFLOP gain (110 vs 67 us),
  hence 2^23 flops; GELU breaks even near 40k elements and a 128-wide layer
  norm near 100k (65k: 9 vs 13 us; 262k: 34 vs 25 us), hence 2^17 elements.
* ``NEURAL_ARCH_NUM_THREADS`` caps our threads (e.g. 1 to share a machine).
  ``NEURAL_ARCH_BLAS_THREADS=native`` leaves BLAS its own threads instead; then
  products are not split, helpers do not poll (two spinning pools on two cores
  made a char-GPT step 3x slower) and kernels split from 2^20 elements.
  ``NEURAL_ARCH_SPIN_US=0`` turns the polling off.

``describe()`` reports the policy in force; ``neural-arch info`` prints it.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

# Below this many elements a kernel runs on one thread (measured: see the module doc);
# NEURAL_ARCH_PARALLEL_MIN_ELEMENTS (a whole number) overrides it.
_env_min = os.environ.get("NEURAL_ARCH_PARALLEL_MIN_ELEMENTS", "").strip()
PARALLEL_MIN_ELEMENTS = int(_env_min) if _env_min.isdigit() else 1 << 17
# A matrix product of at least this many flops (2 M N K) is split over the threads (backend/gemm.py).
_env_gemm = os.environ.get("NEURAL_ARCH_GEMM_SPLIT_FLOPS", "").strip()
GEMM_SPLIT_FLOPS = int(_env_gemm) if _env_gemm.isdigit() else 1 << 23


_CORES = os.cpu_count() or 1  # os.cpu_count() reads /sys: ~8 us, too slow to ask on every kernel call


def num_threads() -> int:
    env = os.environ.get("NEURAL_ARCH_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return _CORES


# How long a helper keeps polling for its next job before it sleeps on a lock, and how long a caller
# polls for a helper to finish. ~25 ns per poll (a ``pause``) on this project's machine.
_env_spin = os.environ.get("NEURAL_ARCH_SPIN_US", "").strip()
SPIN_US = int(_env_spin) if _env_spin.isdigit() else 2000
_POLLS_PER_US = 40
_SETTLE_POLLS = 100  # ~2.5 us: a helper that saw its job lets the caller get into its own share first
_JOIN_POLLS = 1000 * _POLLS_PER_US  # a caller waits ~1 ms by polling, then sleeps until the helper is done


class Policy:
    """Every threading threshold and knob in one object (the names stream 2's policy object keeps):
    the kernels (``backend.kernels``), the product split (``backend.gemm``) and the elementwise
    split read them here. The values come from the module's settings above and the environment."""

    ufunc_split_elements = 1 << 19  # an elementwise NumPy call is split over the threads from here
    gemv_split_bytes = 4 << 20  # a vector-times-matrix product is split when the matrix has this many bytes
    num_threads = property(lambda self: num_threads())
    kernel_min_elements = property(lambda self: PARALLEL_MIN_ELEMENTS)
    gemm_split_flops = property(lambda self: GEMM_SPLIT_FLOPS)
    spin_us = property(lambda self: SPIN_US)


policy = Policy()


_spin_compiled = None  # backend/kernels/spin.py once its polls compiled (False: they could not be)


def _spin_module():
    """backend/kernels/spin.py when numba is usable and spinning is on, else None (locks only).
    Not while BLAS has its own threads: they spin too, and two spinning pools on the same cores
    deschedule each other (measured: a char-GPT step 23 ms -> 70 ms)."""
    global _spin_compiled
    if SPIN_US == 0 or not _blas_ours:
        return None
    from neural_arch.backend import kernels  # noqa: PLC0415

    if not kernels.enabled_by_env():
        return None
    if _spin_compiled is None:
        try:  # compile (or load) both polls here: a helper thread that failed to would never answer
            from neural_arch.backend.kernels import spin  # noqa: PLC0415

            spin.serve(np.zeros(3, np.int64), 0, 0, 0, np.zeros(16, np.int64))
            spin.wait_finished(np.zeros(3, np.int64), 0, 0)
            _spin_compiled = spin
        except Exception:  # noqa: BLE001 - an llvmlite/numba without these intrinsics: use the locks
            _spin_compiled = False
    return _spin_compiled or None


class _Helper:
    """One persistent thread that runs ``fn(*args)`` when started and signals when done.

    Two locks make the hand-off: ``_go`` is released to start a job, ``_done`` when it ends. With
    numba, both sides poll first (``kernels/spin.py``) so that neither waits for the OS to wake it:
    the helper polls the job counter ``_state[0]`` for ``SPIN_US`` after each job, the caller polls
    the finished counter ``_state[1]`` for up to a millisecond; by then the lock it takes next is
    already released, and only a thread whose poll ran out sleeps on one."""

    def __init__(self, spin):
        self._spin = spin
        self._state = np.zeros(3, np.int64)  # [jobs started, jobs finished, polling?] (kernels/spin.py)
        self._product = np.zeros(16, np.int64)  # a matrix product run inside the poll (spin.post_product)
        self._in_poll = False  # the current job is such a product
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job, self._error = None, None
        threading.Thread(target=self._loop, daemon=True, name="neural-arch-kernels").start()

    def _loop(self):
        finished = 0
        while True:
            if self._spin is not None:  # runs the products posted meanwhile; returns for a Python job
                finished = self._spin.serve(self._state, finished, SPIN_US * _POLLS_PER_US, _SETTLE_POLLS,
                                            self._product)
            self._go.acquire()
            fn, args = self._job
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by join()
                self._error = exc
            self._job = None
            finished += 1
            self._done.release()  # (with spinning, serve then publishes `finished` too)

    def start(self, fn, args) -> None:
        self._error, self._job = None, (fn, args)
        self._go.release()  # released before the counter moves: a polling helper never blocks on it
        self._state[0] += 1

    def post_product(self, a, b, out) -> bool:
        """out = a @ b run inside the helper's poll, if it is polling and BLAS can read the arrays in
        place (then no lock and no GIL is involved); False: use ``start``."""
        if b.ndim != 2:
            return False  # batched products (attention's): Python jobs
        if a.ndim > 2:  # a block of a batch times a matrix (a Linear): one 2-D product when contiguous
            if not (a.flags.c_contiguous and out.flags.c_contiguous):
                return False
            a, out = a.reshape(-1, a.shape[-1]), out.reshape(-1, out.shape[-1])
        addr = _gemm_address(a.dtype)
        self._in_poll = bool(addr) and self._spin.post_product(self._state, self._product, a, b, out, addr)
        return self._in_poll

    def join(self) -> BaseException | None:
        if self._in_poll:  # the helper cannot fail or sleep before it is done: poll, then yield the core
            self._in_poll = False
            while not self._spin.wait_finished(self._state, self._state[0], _JOIN_POLLS):
                time.sleep(0)
            return None
        if self._spin is not None:
            self._spin.wait_finished(self._state, self._state[0], _JOIN_POLLS)
        self._done.acquire()
        return self._error


_helpers: list = []
_helpers_pid = None  # a forked child (a DataLoader worker) inherits the list but not the threads
_in_use = threading.Lock()


def run_split(fn, jobs: list, products: bool = False) -> None:
    """``fn(*args)`` for every ``args`` in ``jobs``, at the same time: the first on this thread,
    the rest on helper threads. ``fn`` must release the GIL (our kernels are ``nogil``) and the
    jobs must write to disjoint memory. If another thread is already using the helpers, the jobs
    run one after another here instead. ``products``: each job is ``(a, b, out)`` and ``fn`` computes
    out = a @ b; a polling helper then runs its product without Python (``_Helper.post_product``)."""
    global _helpers, _helpers_pid
    if len(jobs) == 1 or not _in_use.acquire(blocking=False):
        for args in jobs:
            fn(*args)
        return
    try:
        if _helpers_pid != os.getpid():
            _helpers, _helpers_pid = [], os.getpid()
        while len(_helpers) < len(jobs) - 1:
            _helpers.append(_Helper(_spin_module()))
        started = _helpers[: len(jobs) - 1]
        for helper, args in zip(started, jobs[1:]):
            if not (products and helper._spin is not None and helper.post_product(*args)):
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


_gemm_addresses = None  # {dtype: address of NumPy's BLAS cblas_?gemm (ILP64)}, found once


def _gemm_address(dtype) -> int:
    """Where NumPy's BLAS has ``cblas_sgemm`` / ``cblas_dgemm`` with 64-bit integers (the OpenBLAS
    NumPy's wheels bundle exports them as ``scipy_cblas_?gemm64_``); 0 when unknown, or when
    ``NEURAL_ARCH_GEMM_IN_POLL=0``: helpers then run products through NumPy, as Python jobs."""
    global _gemm_addresses
    if _gemm_addresses is None:
        _gemm_addresses = {}
        if os.environ.get("NEURAL_ARCH_GEMM_IN_POLL", "").strip() != "0":
            try:
                import ctypes  # noqa: PLC0415

                from threadpoolctl import ThreadpoolController  # noqa: PLC0415

                for lib in _numpy_blas(ThreadpoolController())[:1]:
                    dll = ctypes.CDLL(lib.filepath)
                    for dt, name in ((np.float32, "sgemm"), (np.float64, "dgemm")):
                        for symbol in (f"scipy_cblas_{name}64_", f"cblas_{name}64_"):
                            if hasattr(dll, symbol):
                                _gemm_addresses[np.dtype(dt)] = ctypes.cast(getattr(dll, symbol), ctypes.c_void_p).value
                                break
            except Exception:  # noqa: BLE001 - no threadpoolctl, an unusual BLAS: NumPy runs the products
                _gemm_addresses = {}
    return _gemm_addresses.get(dtype, 0)


_blas_ours = False  # True once NumPy's BLAS runs one thread per call and our pool splits products


def blas_is_ours() -> bool:
    return _blas_ours


def configure_blas() -> None:
    """Run NumPy's BLAS on one thread per call (our pool splits large products), once, at import.

    With ``NEURAL_ARCH_BLAS_THREADS=native`` BLAS keeps its own threads, capped by
    ``NEURAL_ARCH_NUM_THREADS`` when that is set. Needs threadpoolctl; without it BLAS is left alone."""
    global _blas_ours, PARALLEL_MIN_ELEMENTS
    native = os.environ.get("NEURAL_ARCH_BLAS_THREADS", "").strip().lower() == "native"
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415
    except ImportError:
        libs = []
    else:
        libs = _numpy_blas(ThreadpoolController()) if not native or os.environ.get("NEURAL_ARCH_NUM_THREADS") else []
    for lib in libs:
        lib.set_num_threads(num_threads() if native else 1)
    _blas_ours = bool(libs) and not native
    if not _blas_ours and not _env_min.isdigit():
        PARALLEL_MIN_ELEMENTS = 1 << 20  # beside BLAS's spinning threads a split pays off only for big calls


def _numpy_blas(controller) -> list:
    """threadpoolctl's handles on the BLAS NumPy calls: the one its wheel bundles (numpy.libs/), or
    the only BLAS loaded (a NumPy built on the system's). Never, say, a BLAS bundled with torch."""
    libs = [c for c in controller.lib_controllers if c.user_api == "blas"]
    bundled = [c for c in libs if os.path.basename(os.path.dirname(c.filepath)).startswith("numpy")]
    return bundled or (libs if len(libs) == 1 else [])


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
    from neural_arch.backend import kernels, memory, ufuncs  # noqa: PLC0415

    return {
        "cores": os.cpu_count(),
        "threads": num_threads(),
        "blas": blas_info(),
        "jit": "numba" if kernels.active() else "off (NumPy reference kernels)",
        "parallel_min_elements": PARALLEL_MIN_ELEMENTS,
        "gemm_split_flops": GEMM_SPLIT_FLOPS if _blas_ours else None,
        "ufunc_split_elements": ufuncs.SPLIT_ELEMENTS if _blas_ours else None,
        "hand_off": (f"helpers poll {SPIN_US} us" + (", run products in the poll (BLAS by address)"
                                                     if _gemm_address(np.dtype(np.float32)) else "")
                     if _spin_module() is not None else "locks only"),
        "memory": memory.describe(),
    }
