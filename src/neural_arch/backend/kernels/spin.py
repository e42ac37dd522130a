"""Spin-waits for the hand-off between our threads (``threads.run_split``), compiled by numba.

Why spin: a thread that sleeps on a lock must be woken by the OS, and on this project's VM that
costs 25-35 us each way (a split call measured 65-70 us of pure hand-off). OpenBLAS and OpenMP
spin for the same reason. These loops run without the GIL, poll a shared counter with an atomic
acquire load (a plain load would be hoisted out of the loop by LLVM and the spin would never see
the change), and execute ``pause`` between polls on x86. Measured: a split call of two empty
jobs 7 us instead of 65-70 us; the 784x100 product of an MLP step cut in two 71 us instead of
110 us on one thread (OpenBLAS's own two spinning threads: 88 us).

The counters are an int64 array ``state``: ``state[0]`` counts jobs handed to the helper,
``state[1]`` jobs it finished.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


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


@njit(nogil=True, cache=True)
def finish_and_wait(state, finished, rounds, settle):
    """Helper side: publish ``finished`` jobs done, then poll (up to ``rounds`` times) for job
    number ``finished + 1``. On seeing it, pause ``settle`` more rounds before returning: the caller
    is then inside its own share of the work, without the GIL, so taking the GIL does not sleep.
    True if a job arrived (False: time to block on the lock instead)."""
    _store_release(state, 1, finished)
    for _ in range(rounds):
        if _load_acquire(state, 0) != finished:
            for _ in range(settle):
                _pause()
            return True
        _pause()
    return False


@njit(nogil=True, cache=True)
def wait_finished(state, target, rounds):
    """Caller side: poll (up to ``rounds`` times) until the helper has finished job ``target``."""
    for _ in range(rounds):
        if _load_acquire(state, 1) == target:
            return True
        _pause()
    return False
