"""``trace``: run a model and record the ops it calls as a ``Graph``.

Every op goes through ``Function.apply``; while tracing, ``autograd.function._tracer`` is set to a
``_Run`` that records each call (op, input tensors, parameters, output). Tensors are told apart by
identity: an input of the traced call, a parameter or buffer of the module (named by its path), the
output of an earlier op, or else a constant the model made from data.

Dynamic axes. A model computes with its sizes as plain Python ints (``x.view(B, T, nh, hs)``), so
one run cannot tell a size that follows the batch from a fixed one. ``trace`` therefore runs the
model at the example sizes and at each corner of ``size + 1`` over the dynamic symbols (2^k runs for
k symbols), plus one at ``size + 2`` to check the fit, and fits every integer that changes as a
polynomial in the symbols (``dims.fit``).
Constants that change with the sizes (position ids, masks, rotary tables) are matched against a few
known forms (``recognize.py``) so that the exported graph can rebuild them.
"""

from __future__ import annotations

import inspect
from itertools import product

import numpy as np

from neural_arch.autograd import function as _function
from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ExportError, NeuralArchError
from neural_arch.graph import flops as _flops
from neural_arch.graph.dims import Dim, fit
from neural_arch.graph.ir import ConstRef, Graph, Node, Value
from neural_arch.graph.recognize import recognize, recognize_static


def op_name(fn) -> str:
    """An op's stable name: ``Function.op_name`` when a class sets one, else the class name."""
    return getattr(fn, "op_name", None) or fn.__name__


def trace(module_or_fn, *example_args, dynamic_axes: dict | None = None, input_names=None) -> Graph:
    """Run ``module_or_fn(*example_args)`` and return the ``Graph`` of the ops it called.

    Args:
        module_or_fn: an ``nn.Module`` (its parameters and buffers become named constants) or any
            function of tensors.
        example_args: Tensors or NumPy arrays (the graph's inputs, in order). Anything else is
            passed through and baked into the graph.
        dynamic_axes: ``{input: {axis: "name"}}`` (or ``{input: [axis, ...]}``), ``input`` a name
            from ``input_names`` or a position. Sizes along these axes become symbols: the graph
            is valid for any value of them. Inputs that share a name share the size.
        input_names: names of the inputs; default: the forward's argument names.

    Data-dependent Python control flow (an ``if`` on a tensor's values, a loop over a size) is
    recorded as the branch taken with the example inputs: the graph is what the model computed
    *then*. The model runs 2^k + 2 times (k dynamic sizes; see the module doc): a branch that
    depends on a dynamic size records different ops at another size and raises ``ExportError``,
    and so does a branch on values that the one run with the example's values moved around takes
    differently (e.g. "skip the mask when every token is real": trace with a padded example). A
    branch on values that this run does not flip is recorded silently as taken.

    Ops that return several tensors, in-place updates of buffers (batch-norm running statistics
    in training; the buffers are restored after the runs) and random numbers drawn outside an op
    are not recorded. Trace in eval mode for inference graphs.
    """
    module = module_or_fn if _is_module(module_or_fn) else None
    names = _input_names(module_or_fn, example_args, input_names)
    arrays = [_array_of(a) for a in example_args]
    axes = _normalize_axes(dynamic_axes or {}, names)
    base = {}
    for name, amap in axes.items():
        arr = arrays[names.index(name)]
        if arr is None:
            raise ExportError(f"trace: dynamic_axes names input {name!r}, which is not a tensor or array")
        for axis, sym in amap.items():
            if axis >= arr.ndim:
                raise ExportError(f"trace: dynamic axis {axis} of input {name!r} is out of range for shape {arr.shape}")
            if base.setdefault(sym, arr.shape[axis]) != arr.shape[axis]:
                raise ExportError(f"trace: dynamic size {sym!r} is {base[sym]} in one input and {arr.shape[axis]} "
                                  f"in {name!r}; inputs that share a size name must agree")
    syms = sorted(base)
    points = [{s: base[s] + int(s in chosen) for s in syms}
              for chosen in ({c for c, on in zip(syms, bits) if on} for bits in product((0, 1), repeat=len(syms)))]
    if syms:  # one more run at +2 on every axis checks each fit (a two-point fit takes T // 2 for T - 3)
        points.append({s: base[s] + 2 for s in syms})
    saved = [(b, b.data.copy()) for b in module.buffers()] if module is not None else []
    try:
        runs = []
        for sizes in points:
            args = [_resized(a, arr, axes.get(n, {}), base, sizes) for a, arr, n in zip(example_args, arrays, names)]
            runs.append(_Run(module, names, args).go(module_or_fn))
        # one more run at the example sizes with other input values: a constant that changes with them was
        # computed from the inputs outside any op, and must be recognised (or refused), never baked in
        shuffled = [_other_values(a, arr) for a, arr in zip(example_args, arrays)]
        try:
            values_run = _Run(module, names, shuffled).go(module_or_fn)
        except (NeuralArchError, ValueError, IndexError):
            values_run = None  # the model refuses those values (e.g. a check on the ids): no comparison
    finally:
        for b, data in saved:  # running statistics updated by the runs (a model in training mode)
            if b.data.shape == data.shape:
                b.data[...] = data
            else:
                b.data = data
    graph = _merge(runs, points, syms, names, axes, values_run)
    for node in graph.nodes:
        node.flops = _flops.count(node, graph)
    return graph


# -- one run ---------------------------------------------------------------------------------------------
class _Run:
    """One execution of the model with the tracer hook set: values, nodes, outputs."""

    def __init__(self, module, names, args):
        self.args = args
        self.input_arrays = [(n, a, _array_of(a)) for n, a in zip(names, args) if _array_of(a) is not None]
        self.values: dict = {}
        self.nodes: list = []
        self.ids: dict = {}  # id(tensor or array) -> value name
        self.alive: list = []  # keeps traced objects alive so their ids are not reused
        self.stack = [""]
        self.params = {}
        if module is not None:
            for name, p in module.named_parameters():
                self.params[id(p)] = (name, "param")
            for name, b in module.named_buffers():
                self.params[id(b)] = (name, "buffer")
        self.module = module
        self.counts: dict = {}

    def go(self, fn):
        for name, obj, arr in self.input_arrays:
            self._add(Value(name, "input", arr.shape, arr.dtype, arr.shape), obj, arr)
        wrapped = self._wrap_modules()
        previous = _function._tracer
        _function._tracer = self
        try:
            with no_grad():
                out = fn(*self.args)
        finally:
            _function._tracer = previous
            for m, had, old in wrapped:
                if had:
                    object.__setattr__(m, "forward", old)
                else:
                    m.__dict__.pop("forward", None)
        self.outputs = [self.tensor_value(t) for t in _flatten(out)]
        if not self.outputs:
            raise ExportError("trace: the model returned no tensor")
        return self

    def _wrap_modules(self):
        if self.module is None:
            return []
        wrapped = []
        for path, m in self.module.named_modules():
            had = "forward" in m.__dict__
            old = m.__dict__.get("forward")
            wrapped.append((m, had, old))
            object.__setattr__(m, "forward", self._scoped(path, m.forward))
        return wrapped

    def _scoped(self, path, forward):
        def call(*args, **kwargs):
            self.stack.append(path)
            try:
                return forward(*args, **kwargs)
            finally:
                self.stack.pop()
        return call

    def _add(self, value, *objs):
        self.values[value.name] = value
        return self._add_alias(value.name, *objs)

    # -- tensors and arrays to value names ------------------------------------------------------------
    def tensor_value(self, t) -> str:
        name = self.ids.get(id(t))
        if name is not None:
            return name
        if id(t) in self.params:
            pname, kind = self.params[id(t)]
            d = t.data
            return self._add(Value(pname, kind, d.shape, d.dtype, d.shape, data=d), t)
        return self.array_value(t.data, t)

    def array_value(self, arr, owner=None) -> str:
        name = self.ids.get(id(arr))
        if name is not None:
            return self._add_alias(name, owner)
        arr = np.asarray(arr)
        for iname, _, iarr in self.input_arrays:  # a copy of an input (na.tensor(ids)) is that input
            if iarr.shape == arr.shape and iarr.dtype == arr.dtype and np.array_equal(iarr, arr):
                return self._add_alias(iname, arr, owner)
        self.counts["const"] = k = self.counts.get("const", 0) + 1
        v = Value(f"const_{k}", "const", arr.shape, arr.dtype, arr.shape, data=np.array(arr), module=self.stack[-1])
        return self._add(v, arr, owner)

    def _add_alias(self, name, *objs):
        """Name ``objs`` (Nones skipped) ``name``, keeping them alive so that their ids are not reused."""
        for o in objs:
            if o is not None:
                self.ids[id(o)] = name
                self.alive.append(o)
        return name

    def param_value(self, p):
        """A node parameter with its arrays replaced by ConstRefs (so they become graph values)."""
        if isinstance(p, np.ndarray) and p.ndim > 0:
            return ConstRef(self.array_value(p))
        if isinstance(p, (np.ndarray, np.generic)):  # a 0-d array or a NumPy scalar: a number
            return p.item()
        if isinstance(p, (tuple, list)):
            items = [self.param_value(x) for x in p]
            return tuple(items) if isinstance(p, tuple) else items
        if isinstance(p, slice):
            return slice(self.param_value(p.start), self.param_value(p.stop), self.param_value(p.step))
        if isinstance(p, Tensor):
            return ConstRef(self.tensor_value(p))
        return p

    # -- the hook -------------------------------------------------------------------------------------
    def __call__(self, cls, inputs, params, out):
        ins = [self.tensor_value(t) for t in inputs]
        ps = {k: self.param_value(v) for k, v in params.items()}
        op = op_name(cls)
        self.counts[op] = k = self.counts.get(op, 0) + 1
        name = f"{op.lower()}_{k}"
        d = out.data
        self._add(Value(name, "node", d.shape, d.dtype, d.shape), out)
        self.nodes.append(Node(len(self.nodes), op, cls, ins, ps, name, self.stack[-1]))


# -- merging the runs ------------------------------------------------------------------------------------
def _merge(runs, points, syms, names, axes, values_run) -> Graph:
    base = runs[0]
    for run, sizes in zip(runs[1:], points[1:]):
        _check_same_path(base, run, sizes, points[0])
    if values_run is not None:
        _check_value_path(base, values_run)
    symbols = {}
    for name, amap in axes.items():
        for axis, sym in amap.items():
            symbols.setdefault(sym, (name, axis))
    values = {}
    for name, v in base.values.items():
        shapes = [run.values[name].shape for run in runs]
        shape = tuple(_fit_int([s[i] for s in shapes], points, syms, f"the shape of {name}")
                      for i in range(len(v.shape)))
        v.shape = shape
        if v.kind == "const":
            datas = [run.values[name].data for run in runs]
            if any(d.shape != datas[0].shape or not np.array_equal(d, datas[0]) for d in datas[1:]):
                v.recipe = recognize(v, datas, points, syms, [run.input_arrays for run in runs], shape)
            else:
                v.recipe = _value_dependence(v, base, values_run)
        values[name] = v
    for i, node in enumerate(base.nodes):
        where = f"{node.op} (in {node.module or 'the top level'})"
        node.params = {k: _merge_param([run.nodes[i].params[k] for run in runs], points, syms, where)
                       for k in node.params}
    for name, amap in axes.items():
        v = values.get(name)
        if v is not None:
            v.shape = tuple(Dim.symbol(amap[a]) if a in amap else d for a, d in enumerate(v.shape))
    inputs = [n for n in names if n in base.values]
    return Graph(values, base.nodes, inputs, base.outputs, symbols, dict(points[0]))


def _check_value_path(base, values_run):
    """The ops and their parameters must not change with the input values (only with sizes)."""
    for a, b in zip(base.nodes, values_run.nodes):
        if a.op != b.op or a.inputs != b.inputs or a.params != b.params:
            raise ExportError(f"trace: the model takes another path when the input values change: op {a.index} is "
                              f"{a.op} (in {a.module or 'the top level'}) with the example inputs but {b.op} (in "
                              f"{b.module or 'the top level'}) with other values. Trace with an example that takes "
                              "the general path (e.g. an attention mask with some padding, not all ones)")
    if len(base.nodes) != len(values_run.nodes):
        raise ExportError(f"trace: the model records {len(base.nodes)} ops with the example inputs but "
                          f"{len(values_run.nodes)} with other values: its control flow depends on the values; "
                          "trace with an example that takes the general path")


def _value_dependence(v, base, values_run):
    """None for a true constant; the recipe of one computed from the inputs' values; or an 'unknown' recipe."""
    other = values_run.values.get(v.name) if values_run is not None else None
    if other is None or other.kind != "const":
        return None
    if other.data.shape == v.data.shape and np.array_equal(other.data, v.data):
        return None
    recipe = recognize_static([v.data, other.data], [base.input_arrays, values_run.input_arrays])
    return recipe or ("unknown", (f"constant {v.name} (first used in {v.module or 'the top level'}, shape "
                                 f"{v.data.shape}) is computed from the input values outside any op, in a way the "
                                 "exporter does not know"))


def _other_values(arg, arr):
    """The same input with its values moved around (an all-equal one gets one element changed)."""
    if arr is None or arr.size == 0:
        return arg
    flat = arr.reshape(-1)
    if (flat == flat[0]).all():
        out = flat.copy()
        out[0] = (0 if flat[0] != 0 else 1) if arr.dtype.kind in "iub" else flat[0] + 1
    else:
        out = np.roll(flat, 1)
    out = out.reshape(arr.shape)
    return Tensor._wrap(out) if isinstance(arg, Tensor) else out


def _check_same_path(base, run, sizes, base_sizes):
    at = ", ".join(f"{k}={v}" for k, v in sizes.items())
    at0 = ", ".join(f"{k}={v}" for k, v in base_sizes.items())
    for a, b in zip(base.nodes, run.nodes):
        if a.op != b.op or a.inputs != b.inputs:
            raise ExportError(f"trace: the model takes a different path when a dynamic size changes: op {a.index} "
                              f"is {a.op} (in {a.module or 'the top level'}) at {at0} but {b.op} (in "
                              f"{b.module or 'the top level'}) at {at}. Python control flow that depends on a "
                              "dynamic size cannot be exported; make that axis static or avoid the branch")
    if len(base.nodes) != len(run.nodes) or base.outputs != run.outputs:
        raise ExportError(f"trace: the model records {len(base.nodes)} ops at {at0} but {len(run.nodes)} at {at}: "
                          "its control flow depends on a dynamic size")


def _fit_int(vals, points, syms, what):
    if all(v == vals[0] for v in vals):
        return vals[0]
    f = fit(list(vals), points, syms)
    if f is None:
        raise ExportError(f"trace: {what} changes with the dynamic sizes as {vals} at {points}, which is not a "
                          "polynomial in them (e.g. a size // 2); make that axis static")
    return f


def _merge_param(vals, points, syms, where):
    v0 = vals[0]
    if isinstance(v0, bool) or v0 is None or isinstance(v0, (str, ConstRef)):
        return v0
    if isinstance(v0, int):
        if not all(isinstance(v, int) for v in vals):
            return v0
        return _fit_int(vals, points, syms, f"a parameter of {where}")
    if isinstance(v0, (tuple, list)):
        if any(len(v) != len(v0) for v in vals):
            raise ExportError(f"trace: a parameter of {where} changes length with the dynamic sizes")
        merged = [_merge_param([v[i] for v in vals], points, syms, where) for i in range(len(v0))]
        return type(v0)(merged)
    if isinstance(v0, slice):
        parts = [_merge_param([getattr(v, a) for v in vals], points, syms, where) for a in ("start", "stop", "step")]
        return slice(*parts)
    return v0


# -- inputs ------------------------------------------------------------------------------------------------
def _is_module(obj) -> bool:
    return hasattr(obj, "named_parameters") and hasattr(obj, "named_modules") and hasattr(obj, "forward")


def _input_names(fn, args, given):
    if given is not None:
        given = list(given)
        if len(given) < len(args):
            given += [f"input_{i}" for i in range(len(given), len(args))]
        return given[: len(args)]
    target = fn.forward if _is_module(fn) else fn
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input_{i}" for i in range(len(args))]


def _normalize_axes(dynamic_axes, names):
    out = {}
    for key, amap in dynamic_axes.items():
        name = names[key] if isinstance(key, int) else key
        if name not in names:
            raise ExportError(f"trace: dynamic_axes names {key!r}, which is not an input ({names})")
        if isinstance(amap, (list, tuple)):
            amap = {a: f"{name}_dim{a}" for a in amap}
        out[name] = {int(a): str(s) for a, s in amap.items()}
    return out


def _array_of(a):
    if isinstance(a, Tensor):
        return a.data
    if isinstance(a, np.ndarray):
        return a
    return None


def _resized(arg, arr, amap, base, sizes):
    """The example input with each dynamic axis cut or tiled to its size in this run."""
    if arr is None or not amap:
        return arg
    for axis, sym in amap.items():
        if sizes[sym] != base[sym]:
            arr = np.take(arr, np.arange(sizes[sym]) % arr.shape[axis], axis=axis)
    return Tensor._wrap(arr) if isinstance(arg, Tensor) else arr


def _flatten(out) -> list:
    if isinstance(out, Tensor):
        return [out]
    if out is None or isinstance(out, (int, float, str, np.ndarray)):
        return []
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flatten(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _flatten(v)]
    if hasattr(out, "__dataclass_fields__"):
        return [t for f in out.__dataclass_fields__ for t in _flatten(getattr(out, f))]
    return []
