"""Large elementwise NumPy calls on all our threads: ``call(np.add, a, b)`` is ``np.add(a, b)``.

NumPy runs a ufunc on one core, but it releases the GIL inside the loop, so blocks of the
output's first axis computed at the same time on our threads (``threads.run_split``) use every
core. Below ``threads.policy.ufunc_split_elements`` the hand-off costs more than it saves, and the
call is plain NumPy, as it is for anything that is not a NumPy array of numbers.

Each block is ``ufunc(*its inputs, out=its rows of the result)``: an input with the output's full
first axis is cut with it, any other (a number, a row vector, fewer dims, a first axis of 1) goes
whole to every block, so each element is computed by exactly the operation NumPy would apply.
The result is C-ordered; its dtype is the one NumPy's type resolution gives (weak Python numbers
included). The caller's ``np.errstate`` is applied in every block (it is per thread).
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import threads
from neural_arch.backend.threads import policy


def call(ufunc, a, b=None):
    """``ufunc(a)`` or ``ufunc(a, b)``, split over the threads when the result is large (see the module
    doc). Spelled for one or two operands: it runs on every add and multiply, where a loop over
    ``*args`` costs a measurable part of a tiny op."""
    n = a.size if type(a) is np.ndarray else 0
    if b is not None and type(b) is np.ndarray and b.size > n:
        n = b.size
    if n < policy.ufunc_split_elements or policy.num_threads < 2 or not threads.blas_is_ours():
        return ufunc(a) if b is None else ufunc(a, b)
    args = (a,) if b is None else (a, b)
    plan = _blocks(ufunc, args)
    if plan is None:
        return ufunc(*args)
    out, jobs = plan
    threads.run_split(_into, jobs)
    return out


def _blocks(ufunc, args):
    """(out, jobs) cutting the result's first axis into one block per thread, or None (plain NumPy)."""
    dtypes = []
    shapes = []
    for a in args:
        if type(a) is np.ndarray:
            if a.dtype.kind not in "biuf":
                return None
            dtypes.append(a.dtype)
            shapes.append(a.shape)
        elif type(a) in (int, float, bool):
            dtypes.append(type(a))  # a weak Python number, as NumPy 2 resolves it
        else:
            return None
    shape = np.broadcast_shapes(*shapes)
    try:
        dtype = ufunc.resolve_dtypes(tuple(dtypes) + (None,))[-1]
    except (TypeError, ValueError):
        return None
    rows = shape[0] if shape else 0
    k = min(policy.num_threads, rows)
    if k < 2:
        return None
    out = np.empty(shape, dtype)
    errstate = np.geterr()
    jobs = []
    for i in range(k):
        lo, hi = rows * i // k, rows * (i + 1) // k
        part = [a[lo:hi] if type(a) is np.ndarray and a.ndim == len(shape) and a.shape[0] == rows else a
                for a in args]
        jobs.append((ufunc, part, out[lo:hi], errstate))
    return out, jobs


def _into(ufunc, args, out, errstate):
    with np.errstate(**errstate):
        ufunc(*args, out=out)
