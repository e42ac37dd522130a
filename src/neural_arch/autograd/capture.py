"""The hook ``na.compile`` listens on while it captures a function (None the rest of the time).

Ops already report to ``function._tracer``. What else a captured function may do has to be seen too,
so that a replay either repeats it or the capture is refused:

* ``on_read(tensor, what)``: Python looked at a tensor's values (``.item()``, ``.numpy()``, ``bool``):
  what happens next may depend on them, which a replay cannot follow;
* ``on_write(tensor)``: an in-place write outside the ops (``x[i] = v``, ``x += 1`` on a tensor that
  needs no grad);
* ``on_backward(tensor, gradient, retain_graph)``: ``tensor.backward()`` is about to run;
* ``on_call(obj, method, args, kwargs)``: an optimizer's ``step``/``zero_grad`` or a scheduler's
  ``step``; the recorder runs it (and replays repeat it) as one opaque call.

The places that report test ``ACTIVE is not None`` first: one global read, like grad mode.
"""

from __future__ import annotations

import functools

ACTIVE = None


def reports_calls(cls, *names: str) -> None:
    """Make ``cls.<name>`` report to the capture hook when one is set (used by ``Optimizer`` and
    ``LRScheduler`` for every subclass). The outermost call is reported; the hook runs it."""
    for name in names:
        method = cls.__dict__.get(name)
        if method is None or getattr(method, "_reports", False):
            continue

        def make(method):
            @functools.wraps(method)
            def reporting(self, *args, **kwargs):
                hook = ACTIVE
                if hook is None:
                    return method(self, *args, **kwargs)
                return hook.on_call(self, method, args, kwargs)

            reporting._reports = True
            return reporting

        setattr(cls, name, make(method))
