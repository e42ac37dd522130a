"""A captured call as a program of arrays: built from two recordings, replayed without Tensors,
graph nodes or the engine.

Two recordings of the same signature are compared before anything is replayed. Whatever an op read
is then named by where it comes from, the same way in both calls:

* ``("arg", k)``: the k-th tensor argument of the call (or its array);
* ``("op", j)``: the output of the j-th op of the call;
* ``("view", ref, shape, strides)``: a view of one of those at its first element (a reshape, a
  transpose, ``.T`` in Python between two ops);
* ``("cast", ref, shape, dtype)``: a reshaped/converted copy of one of those (``target.data.astype``);
* ``("live", tensor)`` / ``("array", a)``: the same object both times (a parameter, a buffer, a
  cached mask): read when the replay runs, so an optimizer's updates are seen;
* ``("const", a)``: made anew by each call with the same values (``arange`` position ids).

Anything else (an array computed in Python from data, a number that changes between calls) refuses
the capture: the caller stays eager.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neural_arch.autograd.engine import _accumulate_leaf, _owned
from neural_arch.autograd.function import _as_array, forward_arrays, unbroadcast
from neural_arch.autograd.grad_mode import STATE
from neural_arch.autograd.tensor import Tensor
from neural_arch.compile import fusion
from neural_arch.compile.optimizer import FusedAdam
from neural_arch.compile.optimizer import fusable as optimizer_fusable
from neural_arch.compile.recording import BackwardCall, OpCall

_ndarray = np.ndarray


class Refused(Exception):
    """The two recordings cannot be one program (the message says why)."""


# -- naming what an op reads -------------------------------------------------------------------------------
class _Sources:
    """Where arrays of one recording come from: its arguments and its ops' outputs."""

    def __init__(self, rec):
        self.tensor = {id(t): ("arg", k) for k, t in enumerate(rec.args)}
        self.array = {id(t.data): ("arg", k) for k, t in enumerate(rec.args)}
        self.by_pointer = {}
        self.arrays = []  # (ref, array), for views and casts
        for k, t in enumerate(rec.args):
            self._add(("arg", k), t.data)
        for j, call in enumerate(rec.ops):
            self.tensor[id(call.out)] = ("op", j)
            self.array.setdefault(id(call.out.data), ("op", j))
            self._add(("op", j), call.out.data)

    def _add(self, ref, arr):
        if isinstance(arr, _ndarray):
            self.arrays.append((ref, arr))
            self.by_pointer.setdefault(arr.__array_interface__["data"][0], []).append((ref, arr))

    def name(self, obj):
        """A ref that needs no comparison with the other recording, or None."""
        if isinstance(obj, Tensor):
            ref = self.tensor.get(id(obj))
            if ref is not None:
                return ref
            obj = obj.data
        return self.array.get(id(obj))

    def view_of(self, arr):
        if not isinstance(arr, _ndarray) or arr.size == 0:
            return []
        return [("view", ref, arr.shape, arr.strides)
                for ref, src in self.by_pointer.get(arr.__array_interface__["data"][0], [])
                if src.dtype == arr.dtype and src is not arr]

    def casts_of(self, arr):
        if not isinstance(arr, _ndarray) or arr.size == 0:
            return []
        found = []
        for ref, src in self.arrays:
            if src.size == arr.size and src is not arr:
                try:
                    same = np.array_equal(src.reshape(arr.shape).astype(arr.dtype), arr)
                except (TypeError, ValueError):
                    same = False
                if same:
                    found.append(("cast", ref, arr.shape, arr.dtype))
        return found


def _ref_of(b, a, src_b: _Sources, src_a: _Sources, where: str):
    """The ref of object ``b`` (recording B) that also names ``a`` (the same place in recording A)."""
    ref = src_b.name(b)
    if ref is not None:
        if src_a.name(a) != ref:
            raise Refused(f"{where} comes from {ref} in one call and elsewhere in the other")
        return ref
    if a is b:
        return ("live", b) if isinstance(b, Tensor) else ("array", b)
    arr_b = b.data if isinstance(b, Tensor) else b
    arr_a = a.data if isinstance(a, Tensor) else a
    if not isinstance(arr_b, _ndarray) or not isinstance(arr_a, _ndarray):
        raise Refused(f"{where} is not a NumPy array")
    for links in (_Sources.view_of, _Sources.casts_of):  # a view of the same source in both, else a cast
        linked = {(r[0], r[1]) for r in links(src_a, arr_a)}
        for ref in links(src_b, arr_b):
            if (ref[0], ref[1]) in linked:
                return ref
    if arr_a.shape == arr_b.shape and arr_a.dtype == arr_b.dtype and np.array_equal(arr_a, arr_b, equal_nan=True):
        return ("const", arr_b)
    raise Refused(f"{where} is computed in Python from data, not by an op (e.g. from tensor.data)")


def _same(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _param_template(b, a, src_b, src_a, where):
    """A param value as a template: arrays and tensors inside become ``_Ref`` objects."""
    if isinstance(b, (_ndarray, Tensor)):
        ref = _ref_of(b, a, src_b, src_a, where)
        return b if ref[0] in ("array", "const") and not isinstance(b, Tensor) else _Ref(ref)
    if isinstance(b, list) and b is not a and type(a) is list and len(a) == len(b) and b:
        try:
            return [_param_template(x, y, src_b, src_a, f"{where}[{i}]") for i, (x, y) in enumerate(zip(b, a))]
        except Refused:
            # a new list each call, filled by the op with arrays nothing names: an out-parameter
            # (selective_scan's state_out). A replay passes a new empty list; an op or the return value
            # that read those arrays would have refused the capture already (they have no name).
            return _OUT_LIST
    if isinstance(b, (tuple, list)) and type(a) is type(b) and len(a) == len(b):
        items = [_param_template(x, y, src_b, src_a, f"{where}[{i}]") for i, (x, y) in enumerate(zip(b, a))]
        return type(b)(items) if any(isinstance(i, _Ref) or i is not x for i, x in zip(items, b)) else b
    if not _same(a, b):
        raise Refused(f"{where} changes between calls ({a!r} then {b!r})")
    return b


class _Ref:
    __slots__ = ("ref",)

    def __init__(self, ref):
        self.ref = ref


_OUT_LIST = _Ref(("out-list",))


def _has_ref(value) -> bool:
    if isinstance(value, _Ref):
        return True
    return isinstance(value, (tuple, list)) and any(_has_ref(v) for v in value)


# -- the program -------------------------------------------------------------------------------------------
class Program:
    """The events of a call, with every input named; ``run(args)`` replays them. ``fuse``: elementwise
    chains run as generated kernels into static buffers, and an Adam/AdamW step as one kernel call per
    parameter group (``fusion``, ``optimizer``)."""

    def __init__(self, rec_a, rec_b, fuse: bool = False):
        if len(rec_a.events) != len(rec_b.events):
            raise Refused("the two calls ran a different number of ops")
        src_a, src_b = _Sources(rec_a), _Sources(rec_b)
        self.n_ops = len(rec_b.ops)
        self.steps = []
        op_index = {id(c): j for j, c in enumerate(rec_b.ops)}
        for ea, eb in zip(rec_a.events, rec_b.events):
            if type(ea) is not type(eb):
                raise Refused("the two calls did different things")
            if isinstance(eb, OpCall):
                self.steps.append(self._op(ea, eb, op_index[id(eb)], src_a, src_b))
            elif isinstance(eb, BackwardCall):
                self.steps.append(self._backward(ea, eb, src_a, src_b))
            else:
                if ea.obj is not eb.obj or ea.method is not eb.method or not _same(ea.args, eb.args) \
                        or not _same(ea.kwargs, eb.kwargs):
                    raise Refused(f"{type(eb.obj).__name__}.{eb.method.__name__}() differs between the calls")
                self.steps.append(("call", eb.method, eb.obj, eb.args, eb.kwargs))
        self.output = _output_template(rec_b.output, rec_a.output, src_b, src_a)
        self.groups, self.optimizers = [], []
        if fuse:
            self._fuse(rec_b)
        self._plan_frees()

    def _fuse(self, rec):
        meta = [([np.shape(getattr(t, "data", t)) for t in c.inputs],
                 [getattr(getattr(t, "data", t), "dtype", None) for t in c.inputs],
                 c.out.data.shape, c.out.data.dtype) for c in rec.ops]
        readers: dict = {}
        for s, step in enumerate(self.steps):
            for ref in _refs_of_step(step):
                if ref[0] == "op":
                    readers.setdefault(ref[1], set()).add(s)
        outputs = {r[1] for r in _refs_in(self.output) if r[0] == "op"}
        self.steps, self.groups = fusion.plan(
            self.steps, meta, lambda j, inside: bool(readers.get(j, set()) - inside), outputs, _expand)
        for s, step in enumerate(self.steps):
            if step[0] == "call" and optimizer_fusable(step[2], step[1], step[3], step[4]):
                fused = FusedAdam(step[2], step[1])
                self.optimizers.append(fused)
                self.steps[s] = ("optimizer", fused)

    def _op(self, ea: OpCall, eb: OpCall, j: int, src_a, src_b):
        name = eb.fn.__name__
        if ea.fn is not eb.fn or ea.needs != eb.needs or len(ea.inputs) != len(eb.inputs):
            raise Refused(f"op {j} is {ea.fn.__name__} in one call and {name} in the other")
        inputs = tuple(_ref_of(b, a, src_b, src_a, f"{name}'s input {i}")
                       for i, (a, b) in enumerate(zip(ea.inputs, eb.inputs)))
        if ea.params.keys() != eb.params.keys():
            raise Refused(f"{name} got other parameters in the other call")
        params = {k: _param_template(eb.params[k], ea.params[k], src_b, src_a, f"{name}'s parameter {k!r}")
                  for k in eb.params}
        dynamic = [k for k, v in params.items() if _has_ref(v)]
        # the dtype apply() gave the output (autocast narrows a low-precision op's float32 result)
        return ("op", j, eb.fn, inputs, params, dynamic, eb.needs, eb.out.data.dtype)

    def _backward(self, ea: BackwardCall, eb: BackwardCall, src_a, src_b):
        if (ea.root, ea.order, ea.retain_graph) != (eb.root, eb.order, eb.retain_graph):
            raise Refused("the two calls' backward passes differ")
        edges = {}
        for j, pb in eb.edges.items():
            pa = ea.edges[j]
            row = []
            for i, (x, y) in enumerate(zip(pa, pb)):
                if y is None or y[0] == "op":
                    if x != y:
                        raise Refused("the two calls' backward passes differ")
                    row.append(y)
                else:
                    ref = _ref_of(y[1], x[1], src_b, src_a, f"the gradient of a leaf (input {i} of op {j})")
                    if ref[0] not in ("arg", "live"):
                        raise Refused("backward() reaches a leaf tensor made inside the call")
                    row.append(("leaf", ref))
            edges[j] = row
        gradient = None
        if eb.gradient is not None or ea.gradient is not None:
            if eb.gradient is None or ea.gradient is None:
                raise Refused("backward(gradient) in one call only")
            gradient = _ref_of(eb.gradient, ea.gradient, src_b, src_a, "backward's gradient")
        return ("backward", eb.root, gradient, eb.retain_graph, eb.order[::-1], edges)

    def _plan_frees(self):
        """After which step each op's output is no longer read (outputs of the call are kept)."""
        last = {}
        for s, step in enumerate(self.steps):
            for ref in _refs_of_step(step):
                if ref[0] == "op":
                    last[ref[1]] = s
        kept = {r[1] for r in _refs_in(self.output) if r[0] == "op"}
        self.frees = [[] for _ in self.steps]
        for j, s in last.items():
            if j not in kept:
                self.frees[s].append(j)
        for s, step in enumerate(self.steps):  # an op nobody reads: freed right after it ran
            if step[0] == "op" and step[1] not in last and step[1] not in kept:
                self.frees[s].append(step[1])
        self._buffer_ids = (0, set())  # (how many, ids) of the groups' static arrays (made on first use)

    def _buffers(self) -> set:
        count = sum(len(g.buffers) for g in self.groups)
        if count != self._buffer_ids[0]:
            self._buffer_ids = (count, {id(b) for g in self.groups for b in g.buffers.values()})
        return self._buffer_ids[1]

    # -- running it ---------------------------------------------------------------------------------------
    def run(self, args: list):
        vals = [None] * self.n_ops
        ctxs = [None] * self.n_ops
        for s, step in enumerate(self.steps):
            kind = step[0]
            if kind == "op":
                _, j, fn, inputs, params, dynamic, needs, dtype = step
                if dynamic:
                    params = dict(params)
                    for k in dynamic:
                        params[k] = _fill(params[k], vals, args)
                ctx = _new_ctx(fn, needs)
                out = forward_arrays(fn, ctx, [_value(r, vals, args) for r in inputs], params)
                if type(out) is not _ndarray:
                    out = _as_array(out)
                if out.dtype != dtype:
                    out = out.astype(dtype)
                ctx.out_shape = out.shape
                vals[j] = out
                ctxs[j] = ctx
            elif kind == "fused":
                step[1].run(vals, ctxs, args, _value, _new_ctx)
            elif kind == "backward":
                self._walk(step, vals, ctxs, args, self._buffers() if self.groups else None)
            elif kind == "optimizer":
                step[1]()
            else:
                _, method, obj, a, kw = step
                method(obj, *a, **kw)
            for j in self.frees[s]:
                vals[j] = None
        return _build(self.output, vals, args, self._buffers() if self.groups else None)

    @staticmethod
    def _walk(step, vals, ctxs, args, buffers=None):
        """The engine's walk (autograd/engine.py ``_walk``) over the recorded order, without hooks."""
        _, root, gradient, retain, order, edges = step
        out = vals[root]
        if gradient is None:
            seed = np.ones(out.shape, out.dtype)
        else:
            seed = _value(gradient, vals, args)
            if seed.dtype != out.dtype:
                seed = seed.astype(out.dtype)
        enabled = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            grads = {root: seed}
            for j in order:
                ctx = ctxs[j]
                g = grads.pop(j, None)
                if g is None:
                    if not retain:
                        ctx._saved = None
                    continue
                in_grads = ctx.backward(ctx, g)  # (a node with a float32 path carries it as its own)
                if type(in_grads) is not tuple:
                    in_grads = (in_grads,)
                if not retain:
                    ctx._saved = None
                for edge, pg, need in zip(edges[j], in_grads, ctx.needs_input_grad):
                    if pg is None or not need or edge is None:
                        continue
                    if edge[0] == "op":
                        k = edge[1]
                        if pg.shape != ctxs[k].out_shape:
                            pg = unbroadcast(pg, ctxs[k].out_shape)
                        if type(pg) is not _ndarray:
                            pg = _as_array(pg)
                        prev = grads.get(k)
                        grads[k] = pg if prev is None else prev + pg
                        continue
                    leaf = args[edge[1][1]] if edge[1][0] == "arg" else edge[1][1]
                    if pg.shape != leaf.data.shape:
                        pg = unbroadcast(pg, leaf.data.shape)
                    if type(pg) is not _ndarray:
                        pg = _as_array(pg)
                    if buffers and _in(pg, buffers):  # a .grad outlives the replay: never a static buffer
                        pg = pg.copy()
                    if leaf.grad is None and leaf.requires_grad and pg.dtype == leaf.data.dtype and _owned(pg, g):
                        leaf.grad = Tensor._wrap(pg)
                    else:
                        _accumulate_leaf(leaf, pg, g, Tensor)
        finally:
            STATE.grad_enabled = enabled


def _new_ctx(fn, needs):
    """A graph node of ``fn`` as ``Function.apply`` makes one, without a Tensor around it."""
    ctx = fn.__new__(fn)
    ctx._saved = ()
    ctx.needs_input_grad = needs
    ctx._out_hooks = None
    ctx._retained = None
    return ctx


def _in(arr, ids) -> bool:
    """Whether ``arr`` is one of the arrays ``ids`` names, or a view of one."""
    while arr is not None:
        if id(arr) in ids:
            return True
        arr = arr.base
    return False


def _value(ref, vals, args):
    kind = ref[0]
    if kind == "out-list":
        return []
    if kind == "op":
        return vals[ref[1]]
    if kind == "arg":
        return args[ref[1]].data
    if kind == "live":
        return ref[1].data
    if kind in ("array", "const"):
        return ref[1]
    src = _value(ref[1], vals, args)
    if kind == "view":
        return np.lib.stride_tricks.as_strided(src, ref[2], ref[3], writeable=False)
    return np.asarray(src).reshape(ref[2]).astype(ref[3])  # "cast"


def _fill(template, vals, args):
    if isinstance(template, _Ref):
        return _value(template.ref, vals, args)
    if isinstance(template, (tuple, list)):
        return type(template)(_fill(v, vals, args) for v in template)
    return template


def _refs_in(template):
    if isinstance(template, _Ref):
        yield from _expand(template.ref)
    elif isinstance(template, (tuple, list)):
        for v in template:
            yield from _refs_in(v)
    elif isinstance(template, (dict, _Struct)):
        for v in (template.fields if isinstance(template, _Struct) else template).values():
            yield from _refs_in(v)


def _expand(ref):
    yield ref
    if ref[0] in ("view", "cast"):
        yield from _expand(ref[1])


def _refs_of_step(step):
    if step[0] == "op":
        for r in step[3]:
            yield from _expand(r)
        yield from _refs_in(step[4])
    elif step[0] == "backward":
        yield ("op", step[1])
        if step[2] is not None:
            yield from _expand(step[2])
    elif step[0] == "fused":
        for r in step[1].externals:
            yield from _expand(r)


def _output_template(b, a, src_b, src_a):
    """The call's return value with its tensors as refs; anything else must be the same both times."""
    if isinstance(b, Tensor):
        if not isinstance(a, Tensor):
            raise Refused("the call returns a tensor once and something else the other time")
        return _Ref(_ref_of(b, a, src_b, src_a, "the returned tensor"))
    if isinstance(b, (tuple, list)) and type(a) is type(b) and len(a) == len(b):
        return type(b)(_output_template(x, y, src_b, src_a) for x, y in zip(b, a))
    if isinstance(b, dict) and type(a) is type(b) and a.keys() == b.keys():  # ModelOutput is a dict
        return _Struct(type(b), {k: _output_template(b[k], a[k], src_b, src_a) for k in b})
    if dataclasses.is_dataclass(b) and not isinstance(b, type) and type(a) is type(b):  # CausalLMOutput
        names = [f.name for f in dataclasses.fields(b)]
        return _Struct(b, {k: _output_template(getattr(b, k), getattr(a, k), src_b, src_a) for k in names})
    if not _same(a, b):
        raise Refused(f"the call returns {type(b).__name__} values that change between calls")
    return b


def _build(template, vals, args, buffers=None):
    if isinstance(template, _Ref):
        ref = template.ref
        if ref[0] == "live":
            return ref[1]
        value = _value(ref, vals, args)
        if buffers and _in(value, buffers):  # the next replay writes there: the caller gets its own copy
            value = value.copy()
        return Tensor._wrap(value)
    if isinstance(template, (tuple, list)):
        return type(template)(_build(v, vals, args, buffers) for v in template)
    if isinstance(template, _Struct):
        fields = {k: _build(v, vals, args, buffers) for k, v in template.fields.items()}
        if isinstance(template.kind, type):
            return template.kind(fields)
        return dataclasses.replace(template.kind, **fields)
    return template


class _Struct:
    """A returned dict subclass (``kind`` its type) or dataclass (``kind`` the instance to copy)."""

    __slots__ = ("kind", "fields")

    def __init__(self, kind, fields: dict):
        self.kind, self.fields = kind, fields
