"""One eager call of a function, recorded: every op (``Function.apply``), every ``backward()``, every
optimizer or scheduler call, in the order they ran.

The call itself runs exactly as it would without us (the recording only watches), so a call that is
recorded is never wrong. What a replay could not repeat ends the recording with a reason instead
(``refused``): Python reading a tensor's values, an in-place write outside the ops, random numbers
drawn outside an op, hooks on the graph, an ``optimizer.step(closure)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neural_arch.autograd import capture as _capture
from neural_arch.autograd import function as _function
from neural_arch.autograd.engine import run_backward, topological_order
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import default_generator


@dataclass
class OpCall:
    """``out = fn.apply(*inputs, **params)``, with the graph node it made (None without grad)."""

    fn: type
    inputs: tuple  # Tensors
    params: dict
    out: Tensor
    needs: tuple  # ctx.needs_input_grad


@dataclass
class BackwardCall:
    """``root.backward(gradient)``: the nodes in the engine's order and where each input's gradient goes."""

    root: int  # index of the op whose output is the root
    gradient: object  # None (ones) or what the user passed
    retain_graph: bool
    order: list  # op indices, in the engine's topological order (walked reversed)
    edges: dict  # op index -> [(("op", j) | ("leaf", tensor) | None), ...] per input


@dataclass
class MethodCall:
    """``method(obj, *args, **kwargs)``: an optimizer's step/zero_grad, a scheduler's step."""

    obj: object
    method: object
    args: tuple
    kwargs: dict


@dataclass
class Recording:
    """What one call did. ``events``: OpCall | BackwardCall | MethodCall, in order."""

    args: list  # the call's tensors, flattened (see api._flatten)
    events: list = field(default_factory=list)
    ops: list = field(default_factory=list)  # the OpCalls alone, in order
    output: object = None
    refused: str | None = None


class Recorder:
    """Installed as ``function._tracer`` and ``capture.ACTIVE`` for the length of one call."""

    def __init__(self, args: list):
        self.rec = Recording(args)
        self.node_of = {}  # id(ctx) -> op index
        self.in_backward = False
        self._rng = None
        self._previous = None

    # -- installing ------------------------------------------------------------------------------------
    def __enter__(self):
        if _function._tracer is not None or _capture.ACTIVE is not None:
            self.rec.refused = "another trace or capture is running"
            return self
        self._previous = _function._tracer
        _function._tracer = self
        _capture.ACTIVE = self
        self._rng = _rng_state()
        return self

    def __exit__(self, *exc):
        self._uninstall()
        return False

    def _uninstall(self):
        if _capture.ACTIVE is self:
            _capture.ACTIVE = None
            _function._tracer = self._previous

    def refuse(self, reason: str) -> None:
        """Stop recording; the call goes on eagerly."""
        if self.rec.refused is None:
            self.rec.refused = reason
        self._uninstall()

    # -- what ops report (function._tracer) -----------------------------------------------------------
    def __call__(self, fn, inputs, params, out):
        if self.in_backward:  # an op run by a backward: part of that node's backward, not of the call
            return None
        rng = _rng_state()
        if rng != self._rng:
            self._rng = rng
            if not fn.draws_random:
                return self.refuse(f"random numbers were drawn outside an op (before {fn.__name__}): "
                                   "a replay would reuse them")
        ctx = out._ctx
        needs = ctx.needs_input_grad if ctx is not None else (False,) * len(inputs)
        index = len(self.rec.ops)
        if ctx is not None:
            self.node_of[id(ctx)] = index
        call = OpCall(fn, inputs, params, out, needs)
        self.rec.ops.append(call)
        self.rec.events.append(call)

    # -- what the rest of autograd reports (capture.ACTIVE) --------------------------------------------
    def on_read(self, tensor, what: str) -> None:
        self.refuse(f"{what} reads a tensor's values in Python: what follows may depend on them")

    def on_write(self, tensor) -> None:
        self.refuse("an in-place write outside the ops (x[i] = v, x += y on a tensor without grad)")

    def on_backward(self, tensor, gradient, grad, retain_graph: bool) -> None:
        plan = self._plan(tensor)
        if plan is not None:
            order, edges = plan
            self.rec.events.append(BackwardCall(self.node_of[id(tensor._ctx)], gradient, retain_graph, order, edges))
        self.in_backward = True
        try:
            run_backward(tensor, grad, retain_graph=retain_graph)
        finally:
            self.in_backward = False

    def _plan(self, tensor):
        """The engine's order and edges for this backward, as op indices (None if refused)."""
        if tensor._ctx is None or id(tensor._ctx) not in self.node_of:
            return self.refuse("backward() from a tensor made outside the compiled call")
        hooked = {}
        nodes = topological_order(tensor._ctx, hooked)
        if hooked:
            return self.refuse("a gradient hook on a leaf tensor (register_hook, DistributedDataParallel)")
        order, edges = [], {}
        for node in nodes:
            j = self.node_of.get(id(node))
            if j is None:
                return self.refuse("backward() reaches a graph built before the compiled call")
            if node._out_hooks is not None or node._retained is not None:
                return self.refuse("a gradient hook or retain_grad() on an intermediate tensor")
            order.append(j)
            edges[j] = [None if p is None else ("op", self.node_of[id(p)]) if isinstance(p, Function)
                        else ("leaf", p) for p in node.parents]
        return order, edges

    def on_call(self, obj, method, args, kwargs):
        if any(isinstance(a, Tensor) or callable(a) for a in (*args, *kwargs.values())):
            self.refuse(f"{type(obj).__name__}.{method.__name__}() with a tensor or a closure argument")
            return method(obj, *args, **kwargs)
        self.rec.events.append(MethodCall(obj, method, args, kwargs))
        # what it does inside (its own ops, other reporting calls) is its business: not recorded
        _capture.ACTIVE, tracer = None, _function._tracer
        _function._tracer = None
        try:
            return method(obj, *args, **kwargs)
        finally:
            _capture.ACTIVE, _function._tracer = self, tracer
            self._rng = _rng_state()


def _rng_state():
    """The default generator's position: draws between two ops change it."""
    state = default_generator.np.bit_generator.state["state"]
    return state["state"], state.get("inc")
