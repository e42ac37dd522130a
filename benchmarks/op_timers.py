"""Per-op timers for our steps: where a step's time goes, op by op, forward and backward apart.

``OpTimers`` wraps, while it is entered, ``Function.apply`` (an op's forward, with the autocast casts and
the float32 path of half inputs it runs) and each op's backward as the engine calls it (``backward`` or
``backward_in_float32``), and adds up per (op, phase) the wall time and the calls. Times are exclusive: a
call made inside another (a ``Cast`` that autocast applies before a product's forward) counts for itself
and not for the outer op, so the rows add up to the time spent in ops. What is left of a step (the
engine's bookkeeping and gradient sums, the optimizer) is the step minus the rows.

    with OpTimers() as timers:
        step()
    print(timers.rows())        # [(op, phase, seconds, calls)], largest first

Benchmark code: it replaces methods of our classes while entered, which no test or library code may do.
"""

from __future__ import annotations

import time
from collections import defaultdict

from neural_arch.autograd import function
from neural_arch.autograd.function import Function


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


class OpTimers:
    """Exclusive wall time and calls per (op class name, "forward" | "backward"); see the module doc."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock  # time.thread_time: the calling thread's CPU time (what our helper threads do not take)
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self._stack = []  # per open call: [its key, time spent in calls nested in it]
        self._undo = []

    def _timed(self, key, fn, *args, **kwargs):
        # a call inside one of the same key (an op's backward inside its float32 path) is the same call
        same = bool(self._stack) and self._stack[-1][0] == key
        self._stack.append([key, 0.0])
        t0 = self.clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = self.clock() - t0
            nested = self._stack.pop()[1]
            self.seconds[key] += spent - nested
            self.calls[key] += not same
            if self._stack:
                self._stack[-1][1] += spent

    def __enter__(self):
        apply = Function.__dict__["apply"].__func__
        timers = self

        def timed_apply(cls, *inputs, **params):
            return timers._timed((cls.__name__, "forward"), apply, cls, *inputs, **params)

        self._patch(Function, "apply", classmethod(timed_apply))
        for cls in _subclasses(Function):
            if "backward" in cls.__dict__:
                backward = cls.__dict__["backward"].__func__

                def timed_backward(ctx, grad, _backward=backward):
                    return timers._timed((type(ctx).__name__, "backward"), _backward, ctx, grad)

                self._patch(cls, "backward", staticmethod(timed_backward))
        in_float32 = function.backward_in_float32  # (a node whose forward runs in float32 takes it as its backward)

        def timed_in_float32(ctx, grad):
            return timers._timed((type(ctx).__name__, "backward"), in_float32, ctx, grad)

        self._patch(function, "backward_in_float32", timed_in_float32)
        return self

    def _patch(self, owner, name, value):
        self._undo.append((owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)))
        setattr(owner, name, value)

    def __exit__(self, *exc):
        for owner, name, value in reversed(self._undo):
            setattr(owner, name, value)
        self._undo.clear()

    def rows(self) -> list:
        """``[(op, phase, seconds, calls)]``, the largest time first."""
        return sorted(((op, phase, s, self.calls[(op, phase)]) for (op, phase), s in self.seconds.items()),
                      key=lambda r: -r[2])
