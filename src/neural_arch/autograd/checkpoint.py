"""Activation checkpointing: keep a region's inputs, not its activations; recompute them in backward.

``checkpoint(fn, *args)`` runs ``fn`` and returns its outputs attached to the graph through one node,
:class:`CheckpointNode`, instead of the nodes ``fn`` made. Those nodes, and the arrays they saved for
backward, are dropped when ``fn`` returns: what a checkpointed region keeps is its inputs (and the RNG
state). When backward reaches the node it runs ``fn`` again with the RNG state of the first run (the
same dropout masks), backpropagates through the fresh nodes and hands the gradients of the region's
inputs on. Memory for activations goes from all regions' to the inputs of every region plus one
region's at a time; time goes up by one more forward per region.

How the region is cut out of the graph (no list of inputs is needed, so closures work: a module's
parameters, a mask computed outside):

    forward    run fn with grad on, recording every node it creates (the ``Function.apply`` hook
               that graph tracing uses, chained); an edge from a recorded node to anything else (a
               leaf such as a parameter, or a node made before the region) is an input edge of the
               region; the CheckpointNode's edges are those input edges.
    backward   run fn again, recording; point each input edge of the new nodes at a stand-in leaf
               (a "sink"), run the ordinary engine from the new outputs, and return each sink's
               gradient for the matching input edge. The engine outside never sees the new nodes.

The recomputation does only what backward needs. A block's last ops (GPT-2's MLP output product, its
bias and the residual sum) make the region's output, whose value backward never reads: the gradient
arrives from outside. So the first run also numbers every op call and works out, from the last call to
the first, which outputs some later op needs (one that reads its inputs in forward, or saves them);
an op that defines ``Function.save_only`` and whose output nothing needs is skipped in the
recomputation: ``save_only`` saves what its backward reads and a zero-strided stand-in takes the place
of its output. Its backward then runs on the same arrays as without checkpointing.

Gradients are the same arrays, summed in the same order, as without checkpointing (bit for bit in
float64) when each of the region's inputs is used inside the region only: a parameter used both in
and outside a region gets its two contributions summed in another order. A region with several
output tensors gets one node per output, and each recomputes the region (a block's usual single
output pays one recomputation).
"""

from __future__ import annotations

import threading

import numpy as np

from neural_arch.autograd import autocast as _autocast
from neural_arch.autograd import engine
from neural_arch.autograd import function as _function
from neural_arch.autograd.function import Function
from neural_arch.autograd.grad_mode import STATE
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.random import default_generator
from neural_arch.errors import GradientError

__all__ = ["CheckpointNode", "checkpoint", "checkpoint_sequential"]


class _Recorder:
    """The ``Function.apply`` hook while a region runs: remembers each node made, and for each edge
    into the region the dtype and shape of the tensor it carries; calls the hook it replaced.
    With a ``numbering``, also tells it each call that returns."""

    __slots__ = ("nodes", "edge_info", "previous", "numbering", "thread")

    def __init__(self, previous, numbering=None):
        self.nodes, self.edge_info, self.previous = {}, {}, previous
        self.numbering = numbering
        self.thread = threading.get_ident()  # ops that other threads run meanwhile are not the region's

    def __call__(self, cls, inputs, params, out):
        ctx = out._ctx
        if ctx is not None and threading.get_ident() == self.thread:
            self.nodes[id(ctx)] = ctx
            for t, edge in zip(inputs, ctx.parents):
                if edge is not None:
                    self.edge_info[id(edge)] = (t.data.dtype, t.data.shape)
        if self.numbering is not None:
            self.numbering.returned(cls, inputs, out)  # (which ignores other threads' calls itself)
        if self.previous is not None:
            self.previous(cls, inputs, params, out)

    def input_edges(self) -> list:
        """The edges from the recorded nodes to nodes and leaves outside them, each once, in order."""
        edges, seen = [], set()
        for ctx in self.nodes.values():
            for edge in ctx.parents:
                if edge is None or id(edge) in self.nodes or id(edge) in seen:
                    continue
                seen.add(id(edge))
                edges.append(edge)
        return edges


def _array_id(t) -> int:
    """The id of the array that holds a tensor's values (the base of a view): a later op that reads an
    output through ``.detach()`` or a view of it then counts as reading the output itself."""
    a = t.data
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return id(a)


class _Numbering:
    """``Function.apply``'s ``_replay`` hook in a region's first run: numbers the calls before their
    forward runs (an op applied inside another's forward comes after it; ``open`` holds the numbers of
    the calls not returned yet) and skips nothing. For each call it keeps, by id only (no array is kept
    alive), what ``plan`` needs: ``(cls, input ids, ids of the inputs it saved, output id, output shape
    and dtype, whether its forward could be skipped)``."""

    __slots__ = ("calls", "open", "thread")

    def __init__(self):
        self.calls, self.open = [], []
        self.thread = threading.get_ident()  # (ops run meanwhile by other threads, a loader's, are not the region's)

    def __call__(self, cls, ctx, inputs, params):
        if threading.get_ident() != self.thread:
            return
        self.open.append(len(self.calls))
        self.calls.append(None)

    def returned(self, cls, inputs, out):
        if threading.get_ident() != self.thread:
            return
        ctx = out._ctx
        skippable = (cls.save_only is not None and ctx is not None and ctx._half_in is None
                     and all(type(t.data) is np.ndarray for t in inputs))  # (NumPy's: may_share_memory below)
        saved = [a for a in ctx._saved if isinstance(a, np.ndarray)] if skippable else []
        self.calls[self.open.pop()] = (
            cls, [_array_id(t) for t in inputs],
            [_array_id(t) for t in inputs if any(np.may_share_memory(a, t.data) for a in saved)],
            _array_id(out), out.data.shape, out.data.dtype, skippable)

    def plan(self) -> tuple | None:
        """The plan of the region's recomputation: ``(classes, stand_ins)``, the class of each call and,
        for each call whose forward is skipped, the (shape, dtype) of its output; None if none is.

        From the last call back: an output is needed if a later call that runs reads it, or a skipped
        call saves it; a call is skipped if its op has ``save_only``, it made a graph node (not on the
        float32 path of a half op) and nothing needs its output. (A tensor freed during the run may leave
        its id to a later one: that can only mark an output needed that is not, never the reverse.)"""
        classes, stand_ins, needed = [], {}, set()
        for k in range(len(self.calls) - 1, -1, -1):
            cls, input_ids, saved_ids, out_id, shape, dtype, skippable = self.calls[k]
            if skippable and out_id not in needed:
                stand_ins[k] = (shape, dtype)
                needed.update(saved_ids)
            else:
                needed.update(input_ids)
            classes.append(cls)
        return (classes[::-1], stand_ins) if stand_ins else None


class _Replay:
    """``Function.apply``'s ``_replay`` hook in a recomputation that has a plan (``_Numbering.plan``): checks
    that the calls come as in the first run and skips the forward of those the plan lists."""

    __slots__ = ("classes", "stand_ins", "next", "thread")

    def __init__(self, plan):
        self.classes, self.stand_ins = plan
        self.next = 0
        self.thread = threading.get_ident()

    def __call__(self, cls, ctx, inputs, params):
        if threading.get_ident() != self.thread:
            return None
        k = self.next
        self.next = k + 1
        if k >= len(self.classes) or self.classes[k] is not cls:
            raise GradientError(f"checkpoint: call {k} of the region's recomputation is {cls.__name__}, not what "
                                "its first run called there; fn must compute the same way twice (pass "
                                "preserve_rng_state=True if it draws random numbers)")
        stand_in = self.stand_ins.get(k)
        if stand_in is None:
            return None
        cls.save_only(ctx, *[t.data for t in inputs], **params)
        shape, dtype = stand_in
        # NaN, not zeros: a read of the output that no op made (through .detach() or .data), which the plan
        # cannot see, then shows in the gradients instead of passing silently
        fill = np.nan if is_floating(dtype) else 0
        return np.broadcast_to(np.full((), fill, dtype), shape)


def _record(fn, args, kwargs, replay=None) -> tuple:
    """``(outputs, recorder)`` of one run of ``fn`` with grad on; ``replay``: the ``_replay`` hook to run
    it under (a ``_Numbering`` in a first run, a ``_Replay`` in a recomputation), or None."""
    recorder = _Recorder(_function._tracer, replay if isinstance(replay, _Numbering) else None)
    previous_replay = _function._replay
    _function._tracer = recorder
    if replay is not None:
        _function._replay = replay
    enabled = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        out = fn(*args, **kwargs)
    finally:
        STATE.grad_enabled = enabled
        _function._tracer = recorder.previous
        _function._replay = previous_replay
    return out, recorder


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _repack(out, values):
    if isinstance(out, tuple):
        return tuple(values)
    if isinstance(out, list):
        return list(values)
    return values[0]


class CheckpointNode(Function):
    """The graph node of one output of a checkpointed region (see the module doc).

    forward:   y = fn(*args)                  (fn's own nodes dropped; args and the RNG state kept)
    backward:  dL/d(inputs) = the backward of a second run of fn, from dL/dy, cut at the region's edges
    """

    @staticmethod
    def forward(ctx, *arrays, **params):  # pragma: no cover - built by checkpoint(), never applied
        """Not used: ``checkpoint`` runs the region itself and builds this node around its output."""
        raise NotImplementedError("CheckpointNode is made by checkpoint(), not applied")

    @staticmethod
    def backward(ctx, grad):
        """Recompute the region (RNG state restored), backpropagate ``grad`` through the new nodes down to
        stand-ins for the region's input edges, and return the stand-ins' gradients, one per edge."""
        fn, args, kwargs, rng_state, index, (amp_on, amp_dtype, amp_cache) = ctx.saved_tensors
        if rng_state is not None:
            now = default_generator.get_state()
            default_generator.set_state(rng_state)
        try:  # under the autocast state of the first run, as torch (backward usually runs outside it)
            with _autocast.autocast("cpu", amp_dtype, amp_on, amp_cache):
                out, recorder = _record(fn, args, kwargs, None if ctx.plan is None else _Replay(ctx.plan))
        finally:
            if rng_state is not None:
                default_generator.set_state(now)
        y = _outputs(out)[index]
        if not isinstance(y, Tensor) or y._ctx is None or id(y._ctx) not in recorder.nodes:
            raise GradientError("checkpoint: the recomputation of the region did not produce output "
                                f"{index} with a graph, as its first run did; fn must compute the same way twice")
        edges = {id(e): i for i, e in enumerate(ctx.input_edges)}
        sinks = [None] * len(edges)
        for node in recorder.nodes.values():
            parents = list(node.parents)
            for k, edge in enumerate(parents):
                if edge is None or id(edge) in recorder.nodes:
                    continue
                i = edges.get(id(edge))
                if i is None:
                    raise GradientError("checkpoint: the recomputation of the region used a tensor its first "
                                        "run did not; fn must compute the same way twice (pass "
                                        "preserve_rng_state=True if it draws random numbers)")
                if sinks[i] is None:
                    dtype, shape = recorder.edge_info[id(edge)]
                    sinks[i] = Tensor._wrap(np.broadcast_to(np.zeros((), dtype), shape), requires_grad=True)
                parents[k] = sinks[i]
            node.parents = tuple(parents)
        pending = engine._callbacks[:]  # callbacks queued by the outer pass run at its end, not ours
        engine._callbacks[:] = []
        try:
            engine.run_backward(y, grad)
        finally:
            engine._callbacks[:] = pending + engine._callbacks
        return tuple(None if s is None or s.grad is None else s.grad.data for s in sinks)


def checkpoint(function, *args, use_reentrant: bool | None = None, preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)`` without keeping its activations: they are recomputed in backward
    (``torch.utils.checkpoint.checkpoint``; see the module doc).

    Args:
        function: any callable of Tensors (a module, a block); it may use tensors it closes over (its
            parameters) and may return a Tensor or a tuple/list of them (other values pass through).
        use_reentrant: accepted for torch's signature. Both values run the mechanism above, which is
            torch's non-reentrant one: gradients reach closed-over tensors, inputs need not require grad.
        preserve_rng_state: restore the default generator's state for the recomputation, so that dropout
            draws the same masks (torch's default; ``False`` saves the copy of the state).

    Under ``no_grad`` (or when nothing in the region requires grad) ``function`` simply runs; while
    ``graph.trace`` records, too (the trace shows the region's ops).
    """
    if not STATE.grad_enabled or (_function._tracer is not None and not isinstance(_function._tracer, _Recorder)):
        return function(*args, **kwargs)
    rng_state = default_generator.get_state() if preserve_rng_state else None
    amp = _autocast.STATE
    amp_state = (amp.enabled, amp.dtype, amp.cache_enabled)
    # Plan what the recomputation may skip, unless the region is inside another one (the outer one's
    # numbering counts its calls) or runs under autocast (casts of weights may be cached in one run and
    # not in the other, so the calls would not line up)
    nested = isinstance(_function._tracer, _Recorder)
    numbering = None if nested or amp.enabled else _Numbering()
    out, recorder = _record(function, args, kwargs, numbering)
    has_inner = any(isinstance(node, CheckpointNode) for node in recorder.nodes.values())
    plan = None if numbering is None or has_inner else numbering.plan()
    edges = recorder.input_edges()
    values = _outputs(out)
    for i, y in enumerate(values):
        if not isinstance(y, Tensor) or y._ctx is None or id(y._ctx) not in recorder.nodes:
            continue  # not made by the region: an input passed through, a constant, a non-tensor
        node = CheckpointNode.__new__(CheckpointNode)
        node.parents = tuple(edges)
        node.needs_input_grad = (True,) * len(edges)
        node.out_shape = y.data.shape
        node._out_hooks = node._retained = None
        node._saved = (function, args, kwargs, rng_state, i, amp_state)
        node.input_edges = tuple(edges)
        node.plan = plan
        t = Tensor._wrap(y.data, requires_grad=True)
        t._ctx = node
        if nested:  # a region inside a region: the outer one records it
            _function._tracer.nodes[id(node)] = node
            _function._tracer.edge_info.update({id(e): recorder.edge_info[id(e)] for e in edges})
        values[i] = t
    return _repack(out, values)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,  # noqa: A002 - torch's
                          **kwargs):
    """Run ``functions`` (a Sequential or a list of modules/callables) one after another on ``input``,
    cut into ``segments`` checkpointed runs of consecutive functions; as torch, the last segment is not
    checkpointed (backward starts there and would recompute it at once)."""
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be at least 1, got {segments}")
    n = len(functions)
    size = max(n // segments, 1)

    def run(lo, hi):
        def forward(x):
            for f in functions[lo:hi]:
                x = f(x)
            return x
        return forward

    end = 0
    for start in range(0, size * (segments - 1), size):
        end = min(start + size, n)
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)  # noqa: A001
    return run(end, n)(input)
