"""The backward engine: reverse-mode differentiation over the recorded graph.

``run_backward(root, grad)``:

1. Order the graph's nodes (``Function`` contexts) so that every node comes
   after all nodes that consume its output: an iterative depth-first search,
   so a 10,000-op chain needs no recursion.
2. Walk that order once from the root, calling each node's ``backward`` on
   the sum of the gradients its consumers sent it, undoing broadcasting
   (:func:`unbroadcast`), and passing the results on to its inputs.
3. Leaves (tensors made by the user with ``requires_grad=True``) accumulate
   into ``.grad``. Intermediate gradients are dropped as soon as they are
   used, and each node's saved arrays are freed unless ``retain_graph``.
   A leaf with hooks gets its total gradient (hooks first) as soon as its last
   incoming edge has been walked, so that a hook can act while the rest of
   backward runs (DistributedDataParallel starts its allreduces there).
4. Callbacks queued during the pass (:func:`queue_callback`) run once at its end.
"""

from __future__ import annotations

import sys

import numpy as np

from neural_arch.autograd import capture as _capture
from neural_arch.autograd import function as _function
from neural_arch.autograd.function import Function, _as_array, check_finite, unbroadcast
from neural_arch.autograd.grad_mode import STATE
from neural_arch.errors import GradientError, ShapeError, shape_str

_ndarray = np.ndarray


def topological_order(root_fn, hooked_edges: dict | None = None) -> list:
    """Nodes reachable from ``root_fn``, each before the nodes it feeds into
    (post-order); reversed, every node comes after all its consumers.
    ``hooked_edges``, if given, receives ``id(leaf) -> number of edges`` into each leaf with hooks."""
    order = []
    seen = {id(root_fn)}
    stack = [(root_fn, iter(root_fn.parents))]
    while stack:
        fn, parents = stack[-1]
        for pf in parents:  # a node, a leaf tensor or None: only nodes are walked
            if isinstance(pf, Function):
                if id(pf) not in seen:
                    seen.add(id(pf))
                    stack.append((pf, iter(pf.parents)))
                    break
            elif pf is not None and pf._hooks is not None and hooked_edges is not None:
                hooked_edges[id(pf)] = hooked_edges.get(id(pf), 0) + 1
        else:
            stack.pop()
            order.append(fn)
    return order


def _owned(g, incoming) -> bool:
    """May a leaf keep ``g`` as its ``.grad`` without copying it? Only if no
    other gradient shares its memory: pass-through ops (add, reshape views,
    broadcast_to) hand on the incoming array or a view of it. A whole, C-ordered view of an array
    that nothing else references is kept too: an op's result reshaped back to its input's shape (the
    norms' dx), which copying would cost as much as the op's backward."""
    if g is incoming or getattr(g, "flags", None) is None or not g.flags.writeable:
        return False
    if g.flags.owndata:
        return True
    return (type(g) is _ndarray and type(g.base) is _ndarray and g.flags.c_contiguous and g.base.flags.owndata
            and g.nbytes == g.base.nbytes and sys.getrefcount(g.base) == 2)  # (2: g's reference and the call's)


def run_backward(root, grad, retain_graph: bool = False) -> None:
    Tensor = _function._Tensor  # registered by tensor.py, which imports this module (no import cycle)
    if _capture.ACTIVE is not None and not _capture.ACTIVE.in_backward:
        _capture.ACTIVE.on_read(root, "a backward pass other than tensor.backward() (autograd.grad)")
    if root._ctx is None:
        _accumulate_leaf(root, grad, grad, Tensor)
        return
    hooked_edges = {}
    order = topological_order(root._ctx, hooked_edges)
    # Hooks run user code that may build new graphs; backward itself records nothing.
    enabled = STATE.grad_enabled
    STATE.grad_enabled = False  # (no_grad() without the context manager: this runs on every backward)
    try:
        _walk(order, root._ctx, grad, retain_graph, Tensor, hooked_edges)
    finally:
        STATE.grad_enabled = enabled
        callbacks, _callbacks[:] = list(_callbacks), []
    for callback in callbacks:
        callback()


_callbacks: list = []


def queue_callback(callback) -> None:
    """Run ``callback()`` once when the backward pass now running ends (torch's
    ``Variable._execution_engine.queue_callback``): a gradient hook uses it to act on the whole
    pass, e.g. DistributedDataParallel waits for its last allreduces there."""
    _callbacks.append(callback)


def _walk(order, root_fn, grad, retain_graph, Tensor, hooked_edges) -> None:
    """Steps 2 and 3 of the module doc: each node's backward, in ``order`` reversed, starting
    from ``grad`` at the root's node."""
    anomaly = STATE.anomaly
    grads = {id(root_fn): grad}
    hooked = {}
    for fn in reversed(order):
        g = grads.pop(id(fn), None)
        if g is None:  # no gradient flows into this node (e.g. only through int outputs)
            if not retain_graph:
                fn._saved = None
            if hooked_edges:
                _skip_edges(fn.parents, hooked_edges, hooked, Tensor)
            continue
        if fn._out_hooks is not None:
            for hook in fn._out_hooks:
                r = hook(Tensor._wrap(g))
                if r is not None:
                    g = r.data
        if fn._retained is not None:
            t = fn._retained()
            if t is not None:
                t.grad = Tensor._wrap(g.copy() if t.grad is None else t.grad.data + g)
        if fn._saved is None:
            raise GradientError(
                f"{fn.name}: trying to backward through the graph a second time (its saved "
                "arrays were freed after the first backward). Pass retain_graph=True to the "
                "first backward() if you need to call it twice."
            )
        in_grads = fn.backward(fn, g)  # (a node whose forward ran in float32 has its own backward: function.py)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if not retain_graph:
            fn._saved = None
        parents = fn.parents
        if len(in_grads) != len(parents):
            raise GradientError(
                f"{fn.name}: backward returned {len(in_grads)} gradients for {len(parents)} inputs"
            )
        for p, pg, need in zip(parents, in_grads, fn.needs_input_grad):
            if pg is None or not need:
                if hooked_edges and p is not None and not isinstance(p, Function) and p._hooks is not None:
                    _skip_edges((p,), hooked_edges, hooked, Tensor)
                continue
            is_node = isinstance(p, Function)
            shape = p.out_shape if is_node else p.data.shape
            if pg.shape != shape:
                pg = unbroadcast(pg, shape)
            if type(pg) is not _ndarray:  # NumPy turns 0-d results into scalars
                pg = _as_array(pg)
            if anomaly:
                check_finite(pg, f"the backward of {type(fn).__name__}")
            if is_node:
                k = id(p)
                prev = grads.get(k)
                grads[k] = pg if prev is None else prev + pg
            elif p._hooks is None:
                if p.grad is None and p.requires_grad and pg.dtype == p.data.dtype and _owned(pg, g):  # usual: inline
                    p.grad = Tensor._wrap(pg)
                else:
                    _accumulate_leaf(p, pg, g, Tensor)
            else:  # a hooked leaf sees its total gradient once, when its last edge is walked
                prev = hooked.get(id(p))
                hooked[id(p)] = (p, pg.copy() if prev is None else prev[1] + pg)
                left = hooked_edges[id(p)] = hooked_edges[id(p)] - 1
                if left == 0:
                    _accumulate_leaf(p, hooked.pop(id(p))[1], None, Tensor)
        if not retain_graph:
            fn.parents = ()  # free the graph behind this node as we go
    for leaf, lg in hooked.values():  # leaves some of whose edges carried no gradient
        _accumulate_leaf(leaf, lg, None, Tensor)


def _skip_edges(parents, hooked_edges, hooked, Tensor) -> None:
    """Count edges into hooked leaves that carry no gradient, so that a leaf whose other edges
    did carry one still gets it as soon as its last edge is passed."""
    for p in parents:
        if p is None or isinstance(p, Function) or id(p) not in hooked_edges:
            continue
        left = hooked_edges[id(p)] = hooked_edges[id(p)] - 1
        if left == 0 and id(p) in hooked:
            _accumulate_leaf(p, hooked.pop(id(p))[1], None, Tensor)


def _accumulate_leaf(leaf, g, incoming, Tensor) -> None:
    if not leaf.requires_grad:
        return
    if leaf._hooks is not None:
        for hook in leaf._hooks:
            r = hook(Tensor._wrap(g))
            if r is not None:
                g = incoming = r.data  # the user may keep the replacement: never adopt it as .grad
    if g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if leaf.grad is None:
        leaf.grad = Tensor._wrap(g if _owned(g, incoming) else g.copy())
    else:
        # In place, so that optimizers holding ``p.grad`` see the sum and no new array is made.
        acc = leaf.grad.data
        if acc.shape != g.shape:
            raise ShapeError(f"cannot accumulate gradient {shape_str(g.shape)} into .grad {shape_str(acc.shape)}")
        acc += g


def backward(tensor, gradient=None, retain_graph: bool = False) -> None:
    """``tensor.backward(gradient)``: see :meth:`Tensor.backward`."""
    if not tensor.requires_grad:
        raise GradientError(
            "backward() on a tensor that does not require grad: no input of the computation "
            "had requires_grad=True (or it ran under no_grad())"
        )
    if gradient is None:
        if tensor.data.size != 1:
            raise GradientError(
                f"backward() without a gradient needs a scalar output, got shape {shape_str(tensor.shape)}; "
                "pass gradient=<tensor of that shape> or reduce first (e.g. .sum())"
            )
        data = tensor.data
        # (np.ones, not ones_like, for NumPy arrays: cheaper, on every backward of a loss)
        grad = np.ones(data.shape, data.dtype) if type(data) is _ndarray else np.ones_like(data)
    else:
        grad = gradient.data if hasattr(gradient, "data") and not isinstance(gradient, np.ndarray) else gradient
        if isinstance(grad, (list, float, int, np.ndarray, np.generic)):
            grad = np.asarray(grad, dtype=tensor.data.dtype)
        elif grad.dtype != tensor.data.dtype:  # a float64 gradient must not turn a float32 graph float64
            grad = grad.astype(tensor.data.dtype)
        if grad.shape != tensor.data.shape:
            raise ShapeError(
                f"backward(gradient): gradient has shape {shape_str(grad.shape)} but the tensor has "
                f"shape {shape_str(tensor.shape)}"
            )
    if _capture.ACTIVE is not None:  # na.compile is capturing: it records this backward (and runs it)
        return _capture.ACTIVE.on_backward(tensor, gradient, grad, retain_graph)
    run_backward(tensor, grad, retain_graph=retain_graph)
