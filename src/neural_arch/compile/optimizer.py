"""The optimizer update of a replayed step as one kernel call per parameter group.

Eager ``Adam.step`` calls ``adam_step`` once per parameter: a layout check, a scalar lookup, a
dispatch and a kernel call each, for a GPT's fifty-odd parameters. A replayed step whose optimizer is
a plain ``Adam``/``AdamW`` (no amsgrad, no maximize) runs ``adam_group`` instead: one numba call per
parameter group, which runs ``adam_kernel``'s compiled loop on every parameter of the group (the same
float32 operations in the same order: bit for bit the eager step), split over the threads by ranges of
the group's concatenated elements.

The parameters are not moved into one flat buffer: rebinding ``p.data`` to views of one would break
whatever else holds a parameter's array (a recorded constant, a user's reference, a DDP bucket), and
gathering the gradients into one would add a pass over them. The kernel reads the arrays where they
are, as a tuple.

Anything the fused call does not cover (a parameter without a gradient this step, unequal step counts,
another dtype or layout, kernels off) runs the optimizer's own ``step`` for that call: same result.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend import threads
from neural_arch.backend.kernels import _dispatch
from neural_arch.backend.kernels._jit import EXACT, _jit
from neural_arch.backend.kernels.optim import _NONE, _adam_scalars, _flat_views, adam_kernel
from neural_arch.optim import Adam

_F32 = np.dtype(np.float32)
_compiled = None


def adam_group(ps, gs, ms, vs, starts, lo, hi, step_size, one_minus_beta1, beta2, one_minus_beta2, eps, l2,
               decay, bias_c2_sqrt, none):
    """Elements [lo, hi) of the group's parameters laid end to end (``starts``: where each begins), each
    parameter's part updated by ``adam_kernel`` itself (amsgrad off; ``none``: its unused vmax). The
    kernel gets each part as arrays of its own: indexing the tuples element by element kept the loop
    scalar (measured 14x slower than the per-parameter kernels)."""
    for k in range(len(ps)):
        first = max(lo, starts[k]) - starts[k]
        last = min(hi, starts[k + 1]) - starts[k]
        if first < last:
            _adam_one(ps[k][first:last], gs[k][first:last], ms[k][first:last], vs[k][first:last], step_size,
                      one_minus_beta1, beta2, one_minus_beta2, eps, l2, decay, bias_c2_sqrt, False, none)


_adam_one = None  # adam_kernel's compiled loop, set before adam_group is compiled (numba reads it then)


def fusable(obj, method, args, kwargs) -> bool:
    """Whether a recorded optimizer call can run as :class:`FusedAdam`."""
    return isinstance(obj, Adam) and method is getattr(Adam.step, "__wrapped__", None) and not args and not kwargs


class FusedAdam:
    """Replays ``opt.step()`` of an Adam/AdamW with one :func:`adam_group` call per parameter group."""

    def __init__(self, opt, method):
        self.opt, self.method = opt, method
        self.runs = 0  # steps that ran fused (the rest ran the optimizer's own step)

    def __call__(self):
        work = self._work() if _dispatch.active() else None
        if work is None:
            return self.method(self.opt)
        self.runs += 1
        global _compiled, _adam_one
        if _compiled is None:
            _adam_one = adam_kernel.serial
            _compiled = _jit(adam_group, EXACT)
        for ps, gs, ms, vs, starts, scalars in work:
            total = int(starts[-1])
            # (each thread at least kernel_min_elements, the eager kernels' threshold for splitting a call)
            k = min(threads.policy.num_threads, max(1, total // threads.policy.kernel_min_elements))
            jobs = [(ps, gs, ms, vs, starts, total * i // k, total * (i + 1) // k, *scalars, _NONE) for i in range(k)]
            threads.run_split(_compiled, jobs)
        return None

    def _work(self):
        """Per group: the arrays as flat tuples, their starts and the step's scalars; None when some
        parameter needs the optimizer's own step."""
        opt, work, counted = self.opt, [], []
        for group in opt.param_groups:
            if group["amsgrad"] or group["maximize"]:
                return None
            ps, gs, ms, vs, sizes, step = [], [], [], [], [0], None
            for p in group["params"]:
                grad, state = p.grad, opt.state.get(p)
                if grad is None or not state:
                    return None
                data, m, v = p.data, state["exp_avg"], state["exp_avg_sq"]
                if step is None:
                    step = state["step"]
                if state["step"] != step or type(data) is not np.ndarray or data.dtype != _F32:
                    return None
                flat = _flat_views(data, grad.data, m, v)  # (as adam_step: p and its states in one layout)
                if flat is None:
                    return None
                if not flat[1].flags.writeable:  # (a read-only g is another type: numba wants one in the tuple)
                    flat[1] = flat[1].copy()
                for arrays, a in zip((ps, gs, ms, vs), flat):
                    arrays.append(a)
                sizes.append(data.size)
            if not ps:
                continue
            counted += group["params"]
            beta1, beta2 = group["betas"]
            scalars = _adam_scalars(step + 1, group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                                    group["decoupled_weight_decay"])
            work.append((tuple(ps), tuple(gs), tuple(ms), tuple(vs), np.cumsum(sizes), scalars))
        for p in counted:  # (only once every group is known to run fused)
            opt.state[p]["step"] += 1
        return work
