"""The numba side of the kernel families: compile options, the threaded :class:`Kernel`, shared
float32 math.

Rules that make these loops vectorise (measured; see BENCHMARKS.md):

* ``error_model="numpy"``: Python's error model puts a division-by-zero branch in every
  division, which stops LLVM from vectorising the loop.
* No ``math.exp``/``math.erf`` in float32 loops: without Intel's SVML they are scalar libm
  calls. ``expf`` below is a branch-free polynomial accurate to ~1.5e-7 relative.
* float32 constants spelled ``F(...)`` so nothing silently widens to float64.
* Reductions (row sums) need ``fastmath`` to be reassociated into SIMD lanes.
* numba indexes with signed integers and wraps negative ones; an index LLVM cannot prove >= 0
  gets a test per element that keeps the loop scalar: offsets are spelled ``U(...)`` (uint64).

numba caches each compiled kernel beside its own source file and checks only that file's date: after
editing an ``@inline`` helper or ``FAST``'s flags here, delete ``backend/kernels/__pycache__/*.nb[ic]`` or the
kernels of the other files keep the old helper or flags compiled in.

numba is imported on the first kernel call, not when neural-arch is imported: a kernel and the
``@inline`` helpers it calls are plain Python functions until then.

bfloat16 arrays reach a kernel as their bits (a uint16 view): a kernel reads an element through
:func:`f32` and writes one through :func:`fit`, or a row through :func:`as_f32` and :func:`row_out` /
:func:`row_done`, which numba specialises on the array's type (for a float32 array they are nothing,
so the float32 kernel compiles to the same loop as without them). Kernels are compiled serially
and the threads come from ``backend.threads`` (``Kernel.__call__``): numba's own
``parallel=True`` pool was measured slower (BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import threads

F = np.float32
U = np.uint64  # an index LLVM knows is >= 0
# fastmath's flags less "arcp" (reciprocal approximations): with it, LLVM may lower a vectorised
# division to a reciprocal estimate plus a Newton step (it does on an AMD EPYC, znver5) while the scalar
# copy of the same loop divides exactly. Which copy runs is decided at run time: the scalar one does the
# tail elements and, when the vectoriser's overlap check finds the output within a vector's length of an
# input (two small arrays that malloc put side by side), the whole call. The same values then gave
# results an ulp apart depending on where the arrays lay (EfficientNet's squeeze-excite sigmoid/SiLU on 8
# elements, Adam on a 2-element bias), so a compiled replay was not bit for bit the eager step.
FASTMATH = {"nnan", "ninf", "nsz", "contract", "afn", "reassoc"}  # (numba takes a set, not a frozenset)
FAST = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
# FAST without nsz, for the kernels whose product chains x86's machine combiner otherwise orders one way in
# the vector loop and another in the scalar one (exact GELU: an ulp apart, by the arrays' addresses)
FAST_SIGNED = dict(FAST, fastmath=FASTMATH - {"nsz"})
EXACT = dict(cache=True, error_model="numpy", nogil=True)  # no reassociation: bit-for-bit with NumPy order

_inline: dict = {}  # Python function -> its options, then its numba dispatcher once compiled


def inline(options: dict):
    """Decorator for a helper that kernels call: compiled with ``inline="always"`` on first use."""

    def register(fn):
        _inline[fn] = options
        return fn

    return register


def _jit(fn, options: dict, **extra):
    """``numba.njit(**options)(fn)``, after replacing the ``@inline`` helpers among ``fn``'s globals by
    their compiled dispatchers (numba resolves a kernel's globals when it compiles it)."""
    try:
        import numba  # noqa: PLC0415 - imported on the first kernel call, not with neural-arch
    except ImportError as exc:  # installed (the dispatch saw it) but broken: say so, do not fall back silently
        raise ImportError(f"numba is installed but cannot be imported ({exc}); reinstall it, or run with "
                          "NEURAL_ARCH_JIT=0 to use the NumPy implementations") from exc
    if not _half_overloads:
        _overload_half_access()

    names = fn.__globals__
    for name in fn.__code__.co_names:  # the globals the function reads
        value = names.get(name)
        if callable(value) and value in _inline:
            compiled = _inline[value]
            if isinstance(compiled, dict):
                compiled = _inline[value] = _jit(value, compiled, inline="always")
            names[name] = compiled
    return numba.njit(**options, **extra)(fn)


# -- bfloat16 elements: read widened, written rounded (kernels see a bfloat16 array as uint16 bits) --------
def f32(v):
    """An element as float32: a bfloat16's bits (uint16) widened (the bits shifted into the top half),
    a float32 as it is. Kernels only (numba's overload below)."""
    raise NotImplementedError("a kernel helper: compiled by numba")


def fit(out, v):
    """``v`` (float32) as an element of ``out``: rounded to nearest even and kept as bfloat16 bits when
    ``out`` holds bfloat16 bits (uint16), else ``v`` itself. Kernels only (numba's overload below)."""
    raise NotImplementedError("a kernel helper: compiled by numba")


def widen_bits(b):
    """float32 whose top half is the uint16 ``b``"""
    return np.uint32(np.uint32(b) << np.uint32(16)).view(np.float32)


def round_bits(v):
    """the bfloat16 bits of float32 ``v``: round to nearest even, a NaN becomes the quiet NaN with its
    sign (as ml_dtypes and torch)"""
    b = np.float32(v).view(np.uint32)
    rounded = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    quiet_nan = ((b >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
    return np.uint16(quiet_nan if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded)


def as_f32(a, scratch):
    """A 1-D array (a row ``x[r]``, a weight) as float32: ``a`` itself, or, when it holds bfloat16 bits,
    ``scratch`` (float32, same length) filled with its widened values. A kernel that reads its rows so
    runs the very same float32 loops for both dtypes: per-element :func:`f32` reads left LLVM free to
    vectorise (and contract into FMAs) the two differently, and a few results a float32 ulp apart
    rounded to different bfloat16s."""
    raise NotImplementedError("a kernel helper: compiled by numba")


def row_out(y, r, scratch):
    """Where a kernel computes row r of ``y`` in float32: ``y[r]`` itself, or ``scratch`` (a float32 row)
    when ``y`` holds bfloat16 bits; :func:`row_done` then rounds it into ``y[r]``. For kernels that
    keep intermediate values in the output row (rounding them would change the result)."""
    raise NotImplementedError("a kernel helper: compiled by numba")


def row_done(y, r, row):
    """Row r of ``y`` computed in ``row`` (see :func:`row_out`): rounded into ``y[r]`` for bfloat16 bits;
    nothing for a float32 ``y`` (``row`` was ``y[r]``)."""
    raise NotImplementedError("a kernel helper: compiled by numba")


_half_overloads: list = []


def _overload_half_access():
    """Teach numba :func:`f32` and :func:`fit` (once, before the first kernel compiles)."""
    from numba.core import types  # noqa: PLC0415
    from numba.extending import overload, register_jitable  # noqa: PLC0415

    widen, narrow = register_jitable(inline="always")(widen_bits), register_jitable(inline="always")(round_bits)

    @overload(f32, inline="always")
    def _f32(v):
        if isinstance(v, types.Integer):
            return lambda v: widen(v)
        return lambda v: v

    @overload(fit, inline="always")
    def _fit(out, v):
        if isinstance(out, types.Array) and isinstance(out.dtype, types.Integer):
            return lambda out, v: narrow(v)
        return lambda out, v: v

    @overload(as_f32, inline="always")
    def _as_f32(a, scratch):
        if isinstance(a.dtype, types.Integer):
            def load(a, scratch):
                for j in range(a.size):
                    scratch[j] = widen(a[j])
                return scratch
            return load
        return lambda a, scratch: a

    @overload(row_out, inline="always")
    def _row_out(y, r, scratch):
        if isinstance(y.dtype, types.Integer):
            return lambda y, r, scratch: scratch
        return lambda y, r, scratch: y[r]

    @overload(row_done, inline="always")
    def _row_done(y, r, row):
        if isinstance(y.dtype, types.Integer):
            def store(y, r, row):
                for j in range(row.size):
                    y[r, j] = narrow(row[j])
            return store
        return lambda y, r, row: None

    _half_overloads.append((_f32, _fit, _as_f32, _row_out, _row_done))


class Kernel:
    """A serially compiled numba kernel whose big calls run on all threads, each on a range of rows.

    ``rows``: the positions of the array arguments cut into row ranges (axis 0, the length of the
    first argument); the others (weights, scalars) go whole to every range. ``parts``: per-thread
    accumulators of a reduction (shape (chunks, ...)), cut into equal blocks of chunks, one per range.
    ``offset``: the position of an integer argument that each range receives as its first row (for a
    kernel that reads a whole array at the rows it is writing, e.g. channel c0 + c of an NCHW input).
    ``work``: the position of the array whose size decides whether to split (default: the first).
    A call below ``threads.policy.kernel_min_elements`` runs on one thread.
    """

    def __init__(self, fn, options: dict, rows: tuple, parts: tuple = (), offset: int | None = None,
                 work: int = 0):
        self.fn, self.options, self._serial = fn, options, None
        self.rows, self.parts, self.offset, self.work = rows, parts, offset, work
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    @property
    def serial(self):
        """The compiled kernel itself, run on the calling thread."""
        if self._serial is None:
            self._serial = _jit(self.fn, self.options)
        return self._serial

    def __call__(self, *args):
        serial = self._serial or self.serial
        if args[self.work].size < threads.policy.kernel_min_elements:
            return serial(*args)
        n = args[0].shape[0]
        k = min(threads.policy.num_threads, n, *(args[j].shape[0] for j in self.parts))
        if k < 2:
            return serial(*args)
        jobs = []
        for i in range(k):
            lo, hi = n * i // k, n * (i + 1) // k
            job = list(args)
            for j in self.rows:
                if args[j].shape[0] == n:  # (an unused placeholder, e.g. a (1, 1) dx, goes whole)
                    job[j] = args[j][lo:hi]
            for j in self.parts:
                c = args[j].shape[0]
                job[j] = args[j][c * i // k: c * (i + 1) // k]
            if self.offset is not None:
                job[self.offset] = args[self.offset] + lo
            jobs.append(job)
        threads.run_split(serial, jobs)
        return None


def kernel(options: dict, rows: tuple, parts: tuple = (), offset: int | None = None, work: int = 0):
    """Decorator: ``@kernel(FAST, rows=(0, 1))`` makes a :class:`Kernel`."""
    return lambda fn: Kernel(fn, options, rows, parts, offset, work)


def chunks(rows: int) -> int:
    """How many partial sums a reduction kernel keeps: four per thread (at most one per row)."""
    return max(1, min(threads.policy.num_threads * 4, rows))


# -- float32 math, inlined into the loops ------------------------------------------------------------
@inline(FAST)
def expf(x):
    """e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2; e^r by a degree-7 polynomial (Cephes).
    The input is clamped to [-88, 88.37], which keeps n in [-127, 127]; n = -127 builds 2^n from zero
    exponent bits, which is 0.0, so e^x is exactly 0 for x <= -88 (e^-inf included), as np.exp and torch
    give. (A floor at -87.3, as before, kept n >= -126 and returned 1e-38 there: the softmax of a masked
    score then divided it into denormals, which x86 cores multiply through a slow microcode path in every
    later product that reads them.)"""
    x = min(max(x, F(-88.0)), F(88.37))
    n = np.floor(x * F(1.4426950408889634) + F(0.5))
    r = x - n * F(0.693359375) + n * F(2.12194440e-4)
    p = F(1.9875691500e-4)
    p = p * r + F(1.3981999507e-3)
    p = p * r + F(8.3334519073e-3)
    p = p * r + F(4.1665795894e-2)
    p = p * r + F(1.6666665459e-1)
    p = p * r + F(5.0000001201e-1)
    p = p * r * r + r + F(1.0)
    return p * np.int32((np.int32(n) + 127) << 23).view(np.float32)  # times 2^n, built in the exponent bits


@inline(FAST)
def sigmoidf(x):
    """1 / (1 + e^-x) in float32"""
    return F(1.0) / (F(1.0) + expf(-x))


@inline(FAST)
def larger(a, b):
    """max(a, b), spelled so that LLVM vectorises it"""
    return a if a > b else b


@inline(FAST)
def row_max(x, r, n):
    """max of x[r, :n] in eight independent running maxima: one chain of max() does not vectorise."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = f32(x[r, 0])
    full = n - n % 8
    for j in range(0, full, 8):
        m0, m1 = larger(m0, f32(x[r, j])), larger(m1, f32(x[r, j + 1]))
        m2, m3 = larger(m2, f32(x[r, j + 2])), larger(m3, f32(x[r, j + 3]))
        m4, m5 = larger(m4, f32(x[r, j + 4])), larger(m5, f32(x[r, j + 5]))
        m6, m7 = larger(m6, f32(x[r, j + 6])), larger(m7, f32(x[r, j + 7]))
    m = larger(larger(larger(m0, m1), larger(m2, m3)), larger(larger(m4, m5), larger(m6, m7)))
    for j in range(full, n):
        m = larger(m, f32(x[r, j]))
    return m
