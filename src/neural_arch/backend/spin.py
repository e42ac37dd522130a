"""Spin-waits for the hand-off between our threads (``threads.run_split``), compiled by numba.

Why spin: a thread that sleeps on a lock must be woken by the OS, which costs far more than a
short job (figures: BENCHMARKS.md, "The threading policy"). OpenBLAS and OpenMP spin for the same
reason. These loops run without the GIL, poll a shared counter with an atomic acquire load (a plain
load would be hoisted out of the loop by LLVM and the spin would never see the change), and
execute ``pause`` between polls on x86.

The counters are an int64 array ``state``: ``state[0]`` counts jobs handed to the helper,
``state[1]`` jobs it finished, ``state[2]`` says whether it is polling (1), not (0), or polling and
claimed by a caller for a matrix product (2).

Matrix products run inside the poll: the caller claims a polling helper with a compare-and-swap
(1 -> 2; if the helper's poll ran out meanwhile its own swap 1 -> 0 won, and the caller hands the
job over with the locks instead), writes the product's pointers and layouts into ``job`` and posts
it; the helper calls BLAS's ``cblas_?gemm`` through its address (``backend/cblas.py``), without going
back to Python. A Python job needs the GIL, which the caller holds until it enters its own share: a
helper seeing one first waits a few polls (``settle``), then pays for the GIL and the Python call.
"""

from __future__ import annotations

import os
import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# the ILP64 cblas_?gemm calls by address live in cblas.py (whole products call them there too)
from neural_arch.backend.cblas import _NO_TRANS, _dgemm_at, _operand, _sgemm_at

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_POSIX = os.name == "posix"
_POLLS_PER_YIELD = 64  # past its first polls a helper yields the core once per this many polls


@intrinsic
def _load_acquire(typingctx, array, index):
    """array[index] (int64) as an atomic acquire load."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        return builder.load_atomic(cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]]), "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _store_release(typingctx, array, index, value):
    """array[index] = value (int64) as an atomic release store: everything the thread wrote before
    (a job's output) is visible to whoever acquire-loads the new value."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def _pause(typingctx):
    """The x86 spin-loop hint (nothing elsewhere): saves power and yields the core's pipeline."""

    def codegen(context, builder, signature, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _yield_core(typingctx):
    """``sched_yield()`` (POSIX; elsewhere a ``pause``): the core goes to another thread that wants it,
    a user's BLAS worker say; with none waiting the call returns at once."""

    def codegen(context, builder, signature, args):
        if _POSIX:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        else:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause" if _X86 else "llvm.donothing")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _claim(typingctx, array, index, expected, new):
    """array[index] = new if it holds ``expected`` (an atomic compare-and-swap, int64); True if so."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire"), 1)

    return types.boolean(array, index, expected, new), codegen


@njit(["b1(i8[::1], i8[::1], f4[:, :], f4[:, :], f4[:, :], i8)",  # one compiled version per
       "b1(i8[::1], i8[::1], f8[:, :], f8[:, :], f8[:, :], i8)"],  # dtype, whatever the layouts
      nogil=True, cache=True)
def post_product(state, job, a, b, out, addr):
    """Caller side: hand a polling helper out = a @ b (2-D arrays of one float dtype) to run in its
    poll (see the module doc). False, with nothing done, when it is not polling or an array's layout
    is not one BLAS reads in place; the caller then uses the locks."""
    item = a.itemsize
    m, k = a.shape
    n = b.shape[1]
    ta, lda = _operand(a, item)
    tb, ldb = _operand(b, item)
    tc, ldc = _operand(out, item)
    if (ta == 0 or tb == 0 or tc != _NO_TRANS or m < 2 or n < 2 or k == 0 or addr == 0
            or b.shape[0] != k or out.shape[0] != m or out.shape[1] != n):
        return False  # (shapes that do not match: np.matmul on the Python path says what is wrong;
        # a vector: NumPy calls ?gemv, the faster routine there)
    if not _claim(state, 2, 1, 2):
        return False
    job[0] = 1 if item == 4 else 2
    job[1] = ta
    job[2] = tb
    job[3] = m
    job[4] = n
    job[5] = k
    job[6] = a.ctypes.data
    job[7] = lda
    job[8] = b.ctypes.data
    job[9] = ldb
    job[10] = out.ctypes.data
    job[11] = ldc
    job[12] = addr
    _store_release(state, 0, _load_acquire(state, 0) + 1)
    return True


@njit(nogil=True, cache=True)
def serve(state, finished, rounds, hot, settle, job):
    """Helper side: publish ``finished`` jobs done and poll (up to ``rounds`` times) for the next:
    run each product posted into ``job`` here; return the jobs finished when a job for Python
    arrived or the poll ran out (then the helper sleeps on its lock). On a job for Python, pause
    ``settle`` more rounds first: the caller is then inside its own share of the work, without the
    GIL, so taking the GIL does not sleep.

    Only the first ``hot`` polls keep the core: the next job of a step usually comes within them.
    Past them the helper yields the core now and then (``sched_yield``), so that after a step's
    last job a user's own threads (their NumPy's BLAS workers) get the core at once, not after the
    poll has run out; with no other thread waiting a yield returns at once and the hand-off stays fast.

    ``state[2]`` is written here only while no caller can have claimed the helper: at entry (from 0, by a
    compare-and-swap) and after a product, before its result is published. Once the result is out, a
    caller may claim the helper (1 -> 2) at any moment, so the poll must never store 1 again: a store at
    the top of each round did, and when the helper was descheduled between publishing a result and that
    store, the caller's claim for its next product was overwritten; the helper then took the product's
    counter for a Python job and slept on its lock while the caller waited for the product for ever (the
    embeddings server's stall under overload, NOTES.md; tests/backend/test_threads.py)."""
    _store_release(state, 1, finished)
    _claim(state, 2, 0, 1)  # polling: a caller may claim this helper for a product
    while True:
        claimed = False
        for i in range(rounds):
            if _load_acquire(state, 2) == 2:
                claimed = True
                break
            if _load_acquire(state, 0) != finished:  # a job for Python (posted with the locks)
                if _claim(state, 2, 1, 0):
                    for _ in range(settle):
                        _pause()
                    return finished
                claimed = True  # a caller claimed us and posted a product between the two loads above
                break
            if i >= hot and i % _POLLS_PER_YIELD == 0:
                _yield_core()
            else:
                _pause()
        if not claimed and _claim(state, 2, 1, 0):
            return finished  # the poll ran out: sleep on the lock
        while _load_acquire(state, 0) == finished:  # claimed: the job is being written
            _pause()
        if job[0] == 1:
            _sgemm_at(job[12], job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8], job[9], job[10],
                      job[11])
        else:
            _dgemm_at(job[12], job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[8], job[9], job[10],
                      job[11])
        finished += 1
        _store_release(state, 2, 1)  # polling again before the caller sees the result: it may claim at once
        _store_release(state, 1, finished)  # from here on state[2] is the caller's to change (see above)


@njit(nogil=True, cache=True)
def wait_finished(state, target, rounds):
    """Caller side: poll (up to ``rounds`` times) until the helper has finished job ``target``."""
    for _ in range(rounds):
        if _load_acquire(state, 1) == target:
            return True
        _pause()
    return False
