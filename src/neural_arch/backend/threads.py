"""The threading policy: one pool of threads, ours, shares the cores between BLAS and our kernels.

On a small machine threads are a first-order cost: OpenBLAS's workers spin for a while after each
call, and a second pool beside them gets its threads descheduled. So inside neural-arch's own work
there is one pool, ours (figures: BENCHMARKS.md, "The threading policy"):

* NumPy's BLAS runs one thread per call *inside our calls only*: ``backend.gemm.matmul`` and
  :func:`run_split` set its thread count to 1 through OpenBLAS's own ``openblas_set_num_threads``
  (called by address) and put back what they found when they return (:func:`blas_enter` /
  :func:`blas_exit`). Importing neural-arch, or running a step, leaves a user's BLAS as it was.
  A product of at least ``policy.gemm_split_flops`` is cut into blocks of its output by
  ``backend.gemm.matmul``, one single-threaded BLAS call per thread.
* Elementwise NumPy calls of at least ``policy.ufunc_split_elements`` are cut into row blocks the
  same way (``backend/ufuncs.py``): NumPy releases the GIL inside a ufunc's loop.
* The numba kernels are compiled serially (numba's own pools spin against OpenBLAS or cost more
  than they save per call). A kernel call of at least ``policy.kernel_min_elements`` is cut into
  row ranges; the kernels release the GIL, so the ranges really run at once.
* :func:`run_split` runs the blocks: the first on the calling thread, the others on persistent
  helper threads. A helper polls for its next job for ``policy.spin_us`` after each one, and the
  caller polls for the helper to finish (``backend/spin.py``), as OpenBLAS's and OpenMP's workers do:
  waking a thread that slept on a lock costs far more than a poll. Past ``policy.spin_yield_after_us``
  the poll yields its core to any other thread that wants it (a user's NumPy right after a step).

Every threshold and knob is one field of :data:`policy`, read from the environment at import:

=====================================  ====================================  =====================
field                                  environment variable                  default
=====================================  ====================================  =====================
``num_threads``                        ``NEURAL_ARCH_NUM_THREADS``           the cores
``blas``                               ``NEURAL_ARCH_BLAS_THREADS=native``   ``"ours"``
``blas_lib``                           ``NEURAL_ARCH_BLAS_LIB``              ``"auto"``
``kernel_min_elements``                ``NEURAL_ARCH_PARALLEL_MIN_ELEMENTS`` 2^17 (2^20 if native)
``gemm_split_flops``                   ``NEURAL_ARCH_GEMM_SPLIT_FLOPS``      2^23
``gemv_split_bytes``                                                         4 MiB
``ufunc_split_elements``                                                     2^19
``small_kernel_min_elements``                                                4096
``reduce_kernel_min_elements``                                               2^15
``conv_chunk_bytes``                                                         2 MiB
``spin_us``                            ``NEURAL_ARCH_SPIN_US`` (0: locks)    2000
``spin_yield_after_us``                ``NEURAL_ARCH_SPIN_YIELD_AFTER_US``   50
``gemm_in_poll``                       ``NEURAL_ARCH_GEMM_IN_POLL=0``        True
``jit``                                ``NEURAL_ARCH_JIT=0``                 True
=====================================  ====================================  =====================

``na.set_num_threads(n)`` / ``na.get_num_threads()`` (torch's names) set and read
``policy.num_threads``; ``neural-arch info`` prints the policy (:func:`describe`). With
``NEURAL_ARCH_BLAS_THREADS=native`` BLAS keeps whatever threads it has inside our calls too;
then products are not split, helpers do not poll (two spinning pools on the same cores
deschedule each other) and kernels split only from 2^20 elements. BLAS is also left to its own
threads when it is not an OpenBLAS whose thread count we can set (the split products then stop).

``blas_lib`` picks the library of the products we run ourselves (:func:`mkl`): ``"mkl"`` is Intel
MKL's sequential GEMMs (``backend/blas.py``; ``pip install neural-arch[mkl]``), ``"openblas"`` NumPy's
own BLAS, ``"auto"`` MKL when it is installed, the CPU is Intel's (MKL runs its slower AVX2 code on
others) and NumPy's BLAS is not already MKL.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from dataclasses import dataclass, fields

import numpy as np

from neural_arch.backend import blas
from neural_arch.errors import ConfigError

try:
    from threadpoolctl import ThreadpoolController, threadpool_info
except ImportError:  # a core dependency, but a broken install should still import: BLAS is then left alone
    ThreadpoolController = threadpool_info = None

_CORES = os.cpu_count() or 1
_FALSE = ("0", "false", "no", "off")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


@dataclass
class ThreadingPolicy:
    """Every threshold and knob of the threading policy, in one place (see the module doc)."""

    num_threads: int  # our threads: the caller plus num_threads - 1 helpers
    blas: str  # "ours": BLAS on one thread inside our calls, products split over ours; "native"
    blas_lib: str  # the library of our products: "mkl", "openblas" (NumPy's) or "auto" (see mkl())
    kernel_min_elements: int  # a numba kernel call of this many elements is split into row ranges
    gemm_split_flops: int  # a matrix product of this many flops (2 M N K) is split (backend/gemm.py)
    gemv_split_bytes: int  # a vector-times-matrix product is split when the matrix has this many bytes
    ufunc_split_elements: int  # an elementwise NumPy call with this many elements is split (ufuncs.py)
    small_kernel_min_elements: int  # below this, relu and multiply are one NumPy call: choosing costs more
    reduce_kernel_min_elements: int  # below this, a trailing-axes sum is NumPy's: same reason
    conv_chunk_bytes: int  # conv's column buffer per chunk of images (fits in the caches)
    spin_us: int  # how long a helper polls for its next job before it sleeps (0: locks only)
    spin_yield_after_us: int  # past this much of its poll a helper lets other threads have its core
    gemm_in_poll: bool  # a polling helper runs its share of a product by calling BLAS by address
    jit: bool  # the numba kernels may run (NEURAL_ARCH_JIT); numba must also be importable

    @classmethod
    def from_env(cls) -> ThreadingPolicy:
        """The policy the ``NEURAL_ARCH_*`` environment variables ask for (the table in the module doc)."""
        native = os.environ.get("NEURAL_ARCH_BLAS_THREADS", "").strip().lower() == "native"
        threads = _env_int("NEURAL_ARCH_NUM_THREADS", 0)
        return cls(
            num_threads=threads if threads > 0 else _CORES,
            blas="native" if native else "ours",
            blas_lib=os.environ.get("NEURAL_ARCH_BLAS_LIB", "").strip().lower() or "auto",
            # beside BLAS's own spinning threads a split pays off only for big calls
            kernel_min_elements=_env_int("NEURAL_ARCH_PARALLEL_MIN_ELEMENTS", 1 << 20 if native else 1 << 17),
            gemm_split_flops=_env_int("NEURAL_ARCH_GEMM_SPLIT_FLOPS", 1 << 23),
            gemv_split_bytes=4 << 20,
            ufunc_split_elements=1 << 19,
            small_kernel_min_elements=4096,
            reduce_kernel_min_elements=1 << 15,
            conv_chunk_bytes=2 << 20,
            spin_us=_env_int("NEURAL_ARCH_SPIN_US", 2000),
            spin_yield_after_us=_env_int("NEURAL_ARCH_SPIN_YIELD_AFTER_US", 50),
            gemm_in_poll=os.environ.get("NEURAL_ARCH_GEMM_IN_POLL", "").strip() != "0",
            jit=os.environ.get("NEURAL_ARCH_JIT", "1").strip().lower() not in _FALSE,
        )


policy = ThreadingPolicy.from_env()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for neural-arch's own work (split products, elementwise calls and kernels),
    as ``torch.set_num_threads``. NumPy's BLAS outside our calls is not touched."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: the number of threads must be a whole number >= 1, got {n!r}")
    policy.num_threads = n


def get_num_threads() -> int:
    """How many threads neural-arch's own work uses (``NEURAL_ARCH_NUM_THREADS``, else the cores)."""
    return policy.num_threads


num_threads = get_num_threads  # NOTE: the name the kernels call; stream 1's rewrite may read the policy


# -- NumPy's BLAS: its thread count, set inside our calls only -------------------------------------


class _OpenBLAS:
    """NumPy's OpenBLAS reached by address: its thread count and its ``cblas_?gemm`` (ILP64)."""

    def __init__(self, path: str):
        # PyDLL: the calls keep the GIL (they take nanoseconds; releasing and taking it back cost more)
        dll = ctypes.PyDLL(path)
        self.get = self.set = None
        # NumPy's wheels rename OpenBLAS's symbols (scipy_openblas_..._64_); a system OpenBLAS does not
        for prefix in ("scipy_", ""):
            for suffix in ("64_", ""):
                getter = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
                setter = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
                if getter is not None and setter is not None and self.get is None:
                    getter.argtypes, getter.restype = (), ctypes.c_int
                    setter.argtypes, setter.restype = (ctypes.c_int,), None
                    self.get, self.set = getter, setter
        self.gemm = {}
        for dt, name in ((np.float32, "sgemm"), (np.float64, "dgemm")):
            for symbol in (f"scipy_cblas_{name}64_", f"cblas_{name}64_"):
                if hasattr(dll, symbol):
                    self.gemm[np.dtype(dt)] = ctypes.cast(getattr(dll, symbol), ctypes.c_void_p).value
                    break


_openblas: _OpenBLAS | None | bool = False  # False: not looked for yet; None: none we can drive


def _numpy_openblas() -> _OpenBLAS | None:
    """NumPy's OpenBLAS, found once (on first use, never at import), or None (another BLAS)."""
    global _openblas
    if _openblas is False:
        _openblas = None
        try:
            for lib in _numpy_blas(ThreadpoolController()) if ThreadpoolController else []:
                if lib.internal_api == "openblas":
                    found = _OpenBLAS(lib.filepath)
                    _openblas = found if found.get is not None else None
                break
        except OSError:  # a library that cannot be opened again: leave BLAS alone
            _openblas = None
    return _openblas


def _numpy_blas(controller) -> list:
    """threadpoolctl's handles on the BLAS NumPy calls: the one its wheel bundles (numpy.libs/), or
    the only BLAS loaded (a NumPy built on the system's). Never, say, a BLAS bundled with torch."""
    libs = [c for c in controller.lib_controllers if c.user_api == "blas"]
    bundled = [c for c in libs if os.path.basename(os.path.dirname(c.filepath)).startswith("numpy")]
    return bundled or (libs if len(libs) == 1 else [])


_blas_ours: bool | None = None  # decided on first use


def blas_is_ours() -> bool:
    """True when NumPy's BLAS runs one thread inside our calls and our pool splits products: the
    policy asks for it and NumPy's BLAS is an OpenBLAS whose thread count we can set."""
    global _blas_ours
    if _blas_ours is None:
        _blas_ours = policy.blas == "ours" and _numpy_openblas() is not None
    return _blas_ours


_scope_lock = threading.Lock()
_scope_depth = 0  # how many of our calls (on any thread) are inside blas_enter
_scope_saved = 0  # the BLAS thread count found by the outermost blas_enter, put back by its blas_exit


def blas_enter() -> None:
    """Run NumPy's BLAS on one thread until the matching :func:`blas_exit` (nests, from any thread).
    A no-op unless :func:`blas_is_ours`. Always pair it with ``try: ... finally: blas_exit()``.

    NOTE: OpenBLAS has one thread count per process, so a product that another thread of the user's
    runs at the very moment one of ours is in flight runs on one thread too; once our call returns,
    the user's count is back."""
    global _scope_depth, _scope_saved
    if not (_blas_ours or (_blas_ours is None and blas_is_ours())) or not _openblas:
        return
    _scope_lock.acquire()
    if _scope_depth == 0:
        _scope_saved = _openblas.get()
        if _scope_saved != 1:
            _openblas.set(1)
    _scope_depth += 1
    _scope_lock.release()


def blas_exit() -> None:
    """Put NumPy's BLAS thread count back to what the outermost :func:`blas_enter` found."""
    global _scope_depth
    if not _blas_ours or not _openblas:
        return
    _scope_lock.acquire()
    _scope_depth -= 1
    if _scope_depth == 0 and _scope_saved != 1:
        _openblas.set(_scope_saved)
    _scope_lock.release()


_BLAS_LIBS = ("auto", "mkl", "openblas")
_mkl: blas.MKL | None | bool = False  # False: not decided yet (policy.blas_lib is read once, at first use)


def mkl() -> blas.MKL | None:
    """MKL when our products call it (``policy.blas_lib``), else None; decided and loaded at the first
    product. Never when NumPy's own BLAS is MKL: setting MKL's layers would change the user's NumPy."""
    global _mkl
    if _mkl is False:
        choice = policy.blas_lib
        if choice not in _BLAS_LIBS:
            raise ConfigError(f"NEURAL_ARCH_BLAS_LIB={choice!r}: expected one of {', '.join(_BLAS_LIBS)}")
        found = None
        # "auto" takes MKL on Intel's CPUs only: elsewhere it runs its AVX2 code at half OpenBLAS's speed
        if (choice == "mkl" or (choice == "auto" and cpu_vendor() in ("GenuineIntel", ""))) \
                and not _numpy_blas_is_mkl():
            found = blas.load_mkl()
        if found is None and choice == "mkl":
            why = "NumPy's own BLAS is MKL" if _numpy_blas_is_mkl() else f"it could not be loaded ({blas.load_error})"
            raise ConfigError(f"NEURAL_ARCH_BLAS_LIB=mkl, but {why}: install it with `pip install "
                              "neural-arch[mkl]` (or point NEURAL_ARCH_MKL_PATH at libmkl_rt.so), or set "
                              "NEURAL_ARCH_BLAS_LIB=auto")
        _mkl = found
    return _mkl


def loop_mkl() -> blas.MKL | None:
    """MKL for an LSTM's time loop (its pack-once GEMM per step, ``kernels/recurrent_sequence.py``), which
    beats either library's plain GEMM there on the CPUs measured: :func:`mkl` itself, or under "auto" on a
    CPU that is not Intel's, MKL loaded for that loop alone. None with ``blas_lib="openblas"``. Decided
    once (asking threadpoolctl about NumPy's BLAS costs about half a millisecond)."""
    global _loop_mkl
    if _loop_mkl is False:
        lib = mkl()
        if lib is None and policy.blas_lib == "auto" and not _numpy_blas_is_mkl():
            lib = blas.load_mkl()
        _loop_mkl = lib
    return _loop_mkl


_loop_mkl: blas.MKL | None | bool = False  # False: not decided yet


def cpu_vendor() -> str:
    """/proc/cpuinfo's ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``), "" where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _numpy_blas_is_mkl() -> bool:
    try:
        return any(lib.internal_api == "mkl" for lib in _numpy_blas(ThreadpoolController()))
    except (OSError, TypeError):  # no threadpoolctl (TypeError: None()), or a library it cannot open
        return False


def _gemm_address(dtype) -> int:
    """Where the BLAS of our products (:func:`mkl`, else NumPy's OpenBLAS) has ``cblas_sgemm`` /
    ``cblas_dgemm`` with 64-bit integers; 0 when unknown or when ``policy.gemm_in_poll`` is off: helpers
    then run products through NumPy, as Python jobs."""
    if not policy.gemm_in_poll:
        return 0
    lib = mkl()
    if lib is not None:
        return lib.address(dtype)
    blas = _numpy_openblas()
    return blas.gemm.get(dtype, 0) if blas is not None else 0


# -- the helper threads ---------------------------------------------------------------------------

_POLLS_PER_US = 40  # polls (a ``pause`` each) per microsecond, roughly
_SETTLE_POLLS = 100  # a helper that saw a Python job lets the caller get into its own share first
_JOIN_POLLS = 1000 * _POLLS_PER_US  # a caller polls ~1 ms for a helper, then sleeps until it is done

_spin_compiled = None  # backend/spin.py once its polls compiled (False: they could not be)


def _spin_module():
    """backend/spin.py when numba is usable and polling is on, else None (locks only). Not while
    BLAS keeps its own threads: they spin too, and two spinning pools on the same cores deschedule
    each other."""
    global _spin_compiled
    if policy.spin_us == 0 or not policy.jit or not blas_is_ours():
        return None
    if _spin_compiled is None:
        try:  # compile (or load) both polls here: a helper thread that failed to would never answer
            from neural_arch.backend import spin  # noqa: PLC0415 - numba, loaded only when threads run

            spin.serve(np.zeros(3, np.int64), 0, 0, 0, 0, np.zeros(16, np.int64))
            spin.wait_finished(np.zeros(3, np.int64), 0, 0)
            _spin_compiled = spin
        except Exception:  # noqa: BLE001 - no numba, or an llvmlite without these intrinsics: use the locks
            _spin_compiled = False
    return _spin_compiled or None


class _Helper:
    """One persistent thread that runs ``fn(*args)`` when started and signals when done.

    Two locks make the hand-off: ``_go`` is released to start a job, ``_done`` when it ends. With
    numba, both sides poll first (``backend/spin.py``) so that neither waits for the OS to wake it:
    the helper polls the job counter ``_state[0]`` for ``policy.spin_us`` after each job, the caller
    polls the finished counter ``_state[1]`` for up to a millisecond; by then the lock it takes next
    is already released, and only a thread whose poll ran out sleeps on one."""

    def __init__(self, spin):
        self._spin = spin
        self._state = np.zeros(3, np.int64)  # [jobs started, jobs finished, polling?] (backend/spin.py)
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
                finished = self._spin.serve(self._state, finished, policy.spin_us * _POLLS_PER_US,
                                            policy.spin_yield_after_us * _POLLS_PER_US, _SETTLE_POLLS, self._product)
            self._go.acquire()
            fn, args = self._job
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by join()
                self._error = exc
            # Drop the job's arrays now, not at the next job: a view kept here would keep an op's output
            # alive, and the engine, seeing it shared, would copy that output instead of adopting it.
            self._job = fn = args = None
            finished += 1
            self._done.release()  # (with polling, serve then publishes `finished` too)

    def start(self, fn, args) -> None:
        self._error, self._job = None, (fn, args)
        self._go.release()  # released before the counter moves: a polling helper never blocks on it
        self._state[0] += 1

    def post_product(self, a, b, out) -> bool:
        """out = a @ b run inside the helper's poll, if it is polling and BLAS can read the arrays in
        place (then no lock and no GIL is involved); False: use ``start``."""
        if b.ndim != 2:
            return False  # batched products (attention's): Python jobs
        if not (a.flags.writeable and b.flags.writeable):
            return False  # read-only views (a sum's broadcast gradient): the compiled poll takes writeable arrays
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
    the rest on helper threads, with NumPy's BLAS on one thread meanwhile (:func:`blas_enter`).
    ``fn`` must release the GIL (our kernels are ``nogil``) and the jobs must write to disjoint
    memory. If another thread is already using the helpers, the jobs run one after another here
    instead. ``products``: each job is ``(a, b, out)`` and ``fn`` computes out = a @ b; a polling
    helper then runs its product without Python (``_Helper.post_product``)."""
    global _helpers, _helpers_pid
    if len(jobs) == 1 or not _in_use.acquire(blocking=False):
        for args in jobs:
            fn(*args)
        return
    blas_enter()
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
        blas_exit()
        _in_use.release()


# -- what `neural-arch info` prints ---------------------------------------------------------------


def blas_info() -> list[dict]:
    """What BLAS NumPy uses: library, version, kernel architecture, threads."""
    if threadpool_info is None:
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
    """The policy in force: every field of :data:`policy`, the cores, and how BLAS and the hand-off run."""
    ours = blas_is_ours()
    try:
        lib = mkl()
        products = f"MKL ({lib.version}, sequential)" if lib is not None else "NumPy's BLAS"
    except ConfigError as exc:
        products = f"error: {exc}"
    return {
        "cores": _CORES,
        **{f.name: getattr(policy, f.name) for f in fields(policy)},
        "products": products,
        "blas_in_our_calls": "one thread (set around our calls, then put back)" if ours else "its own threads",
        "hand_off": (f"helpers poll {policy.spin_us} us" + (", run products in the poll (BLAS by address)"
                                                            if _gemm_address(np.dtype(np.float32)) else "")
                     if _spin_module() is not None else "locks only"),
    }
