"""Fusing elementwise chains of a captured program into generated kernels, with a static buffer plan.

A *group* is a run of consecutive forward ops of the program, each elementwise (add, sub, mul, relu,
sigmoid, gelu, silu, counter-based dropout) and possibly a final layer norm over the trailing axis, all
producing float32 arrays of one shape, each after the first reading an earlier one's output: bias +
GELU, bias + dropout + residual add + layer_norm, bias + ReLU, SiLU(gate) * up. The group runs as one
generated kernel (``codegen``): one pass over memory instead of one per op, and a value nothing else
reads (the biased product before GELU) is never written at all.

The backward is untouched: each op of the group still gets its own graph node (``ctx``) holding what
its eager ``forward`` would have saved (GELU's and SiLU's derivative, ReLU's and sigmoid's output,
Mul's inputs, dropout's seed, layer norm's row statistics), so the backward walk runs each op's own
``backward`` in the engine's recorded order.

Static buffers: the values a group stores are written into arrays the group allocates on its first
replay and reuses on every later one (``out=``), instead of a new array per op per step. Such a value
must never outlive the replay: one the call returns gets a new array each time (``escapes``), and the
program copies any returned array or leaf gradient that is a view of a buffer (``program._in``).

Equality with eager: add, sub, mul, relu and dropout are exact operations, spelled as their eager
kernels spell them: bit for bit. GELU's, SiLU's and sigmoid's eager kernels are compiled with
``fastmath``, so a group holding one is too, and LLVM may choose other contractions in it: within a few
float32 ulps (the tests state the tolerance). Such a group holds no product before its last op
(fastmath turned dropout + residual add into one FMA, a rounding eager does not make), and a final
layer norm runs the eager kernel's own compiled loop per row (``codegen``). ``na.compile(...,
fuse=False)`` keeps the unfused, bit-exact replay. With the kernels off (``NEURAL_ARCH_JIT=0``) a group
runs its ops one by one with NumPy (add, sub, mul, relu ``out=`` into the buffers, the others through
their own forward): bit for bit the eager NumPy twins.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.backend.kernels import _dispatch
from neural_arch.backend.kernels.dropout import apply_mask
from neural_arch.compile import codegen
from neural_arch.ops.activation import GELU, ReLU, SiLU
from neural_arch.ops.dropout import CounterDropout, _draw
from neural_arch.ops.elementwise import Add, Mul, Sigmoid, Sub
from neural_arch.ops.norm import LayerNorm

_F32 = np.dtype(np.float32)
_KINDS = {Add: "add", Sub: "sub", Mul: "mul", ReLU: "relu", Sigmoid: "sigmoid", SiLU: "silu",
          CounterDropout: "dropout"}
_DERIV = {"gelu", "gelu_tanh", "silu"}  # ops that save dy/dx, computed with y
_SAVE_OUTPUT = {"relu", "sigmoid"}  # ops that save y
_SAVE_INPUTS = {"mul", "layer_norm"}  # ops that save (views of) their inputs
_UFUNC = {"add": np.add, "sub": np.subtract, "mul": np.multiply}


def kind_of(fn, params) -> str | None:
    """The fused spelling of an op, or None when it cannot join a group."""
    if fn is GELU:
        return {"tanh": "gelu_tanh", "none": "gelu"}.get(params.get("approximate"))
    kind = _KINDS.get(fn)
    if kind == "dropout" and not (isinstance(params.get("p"), float | int) and 0 <= params["p"] < 1):
        return None
    if kind == "silu" and not isinstance(params.get("alpha"), float | int):
        return None
    if fn is LayerNorm and params.get("has_w") and params.get("has_b"):
        return "layer_norm"  # (only as the last op of a group: it needs the whole row)
    return kind


class Member:
    """One op of a group: ``sources`` name its inputs, ("ext", i) an operand of the group or
    ("mem", k) the value of member k."""

    __slots__ = ("j", "fn", "kind", "sources", "params", "needs")

    def __init__(self, j, fn, kind, sources, params, needs):
        self.j, self.fn, self.kind, self.sources, self.params, self.needs = j, fn, kind, sources, params, needs


class Group:
    """Consecutive elementwise ops run as one generated kernel (see the module doc)."""

    def __init__(self, shape, cols):
        self.shape, self.cols = shape, cols
        self.rows = math.prod(shape) // cols
        self.members: list = []
        self.externals: list = []  # refs of the operands read from outside the group
        self.layouts: list = []  # per operand: "full" (the group's shape), "cols" (trailing axes), "scalar"
        self.stored: list = []  # members whose value is written out
        self.derivs: list = []  # members (GELU) whose saved derivative is written out
        self.stats: list = []  # members (a final layer norm) whose row means and 1/std are written out
        self.escapes: set = set()  # stored members the call returns: a new array each replay
        self.buffers: dict = {}  # ("out" | "deriv" | "mean" | "rstd", member) -> its static array
        self.kernel = None
        self.runs = 0

    def __repr__(self):
        return f"Group({' -> '.join(m.kind for m in self.members)}, {self.shape})"

    # -- running --------------------------------------------------------------------------------------------
    def run(self, vals, ctxs, args, value, new_ctx):
        raws = [value(r, vals, args) for r in self.externals]
        self.runs += 1
        draws = {k: _draw(m.params["p"], m.params.get("generator"))
                 for k, m in enumerate(self.members) if m.kind == "dropout"}
        keys = [("out", k) for k in self.stored] + [("deriv", k) for k in self.derivs] + \
            [(name, k) for k in self.stats for name in ("mean", "rstd")]
        outs = {key: self._buffer(key) for key in keys}
        new = [new_ctx(m.fn, m.needs) for m in self.members]
        if _dispatch.active() and all(type(a) is np.ndarray and a.dtype == _F32 for a in raws):
            results = self._fused(raws, outs, draws)
            saved_by_forward = ()
        else:
            results, saved_by_forward = self._one_by_one(raws, outs, draws, new)
        for k, m in enumerate(self.members):
            ctx = new[k]
            ctx.out_shape = self.shape
            if k not in saved_by_forward:
                ins = [raws[i] if src == "ext" else results[i] for src, i in m.sources]
                _save(ctx, m, ins, results[k], outs, k, draws.get(k))
            ctxs[m.j] = ctx
            vals[m.j] = results[k]

    def _buffer(self, key):
        shape = (self.rows,) if key[0] in ("mean", "rstd") else self.shape
        if key[0] == "out" and key[1] in self.escapes:
            return np.empty(shape, _F32)
        buf = self.buffers.get(key)
        if buf is None:
            buf = self.buffers[key] = np.empty(shape, _F32)
        return buf

    def _fused(self, raws, outs, draws):
        if self.kernel is None:
            self.kernel = codegen.build(self)
        shaped = (self.rows, self.cols)
        ins = []
        for a, layout in zip(raws, self.layouts):
            if layout == "full":
                ins.append(np.ascontiguousarray(a).reshape(shaped))
            elif layout == "cols":
                ins.append(np.ascontiguousarray(a).reshape(self.cols))
            else:
                ins.append(a.reshape(1))
        scalars = []
        for k in sorted(draws):
            seed, threshold, scale = draws[k]
            scalars += [seed, threshold, np.float32(scale)]
        arrays = [o if key[0] in ("mean", "rstd") else o.reshape(shaped) for key, o in outs.items()]
        self.kernel(*arrays, *ins, 0, *scalars)
        return [outs.get(("out", k)) for k in range(len(self.members))]

    def _one_by_one(self, raws, outs, draws, ctxs):
        """NumPy, each op as its eager twin computes it; the add/sub/mul/relu values a group stores go
        ``out=`` into their buffers, the other ops run their own ``forward`` on their ctx. Returns the
        values and the members whose forward saved its own ctx."""
        results, own = [], set()
        for k, m in enumerate(self.members):
            ins = [raws[i] if src == "ext" else results[i] for src, i in m.sources]
            out = outs.get(("out", k))
            if m.kind in _UFUNC:
                y = _UFUNC[m.kind](ins[0], ins[1], out=out)  # (out=None: a new array)
            elif m.kind == "relu":
                y = np.maximum(ins[0], 0, out=out)
            elif m.kind == "dropout":
                y = apply_mask(ins[0], *draws[k])
            else:  # gelu, silu, sigmoid, layer_norm
                y = m.fn.forward(ctxs[k], *ins, **m.params)
                own.add(k)
            results.append(y)
        return results, own


def _save(ctx, m, ins, out, outs, k, draw):
    """What the op's eager ``forward`` saves on its ctx (``outs``: the group's written arrays)."""
    kind = m.kind
    if kind == "mul":
        ctx._saved = (ins[0] if m.needs[1] else None, ins[1] if m.needs[0] else None)
    elif kind in _SAVE_OUTPUT:
        ctx._saved = (out,)
    elif kind in _DERIV:
        ctx._saved = (outs.get(("deriv", k)),)
        if kind != "silu":  # GELU.forward also records the input's dtype (its gradient is rounded to it)
            ctx.dtype = np.dtype(np.float32)  # (fused groups are float32 only)
    elif kind == "dropout":
        ctx.draw = draw
    elif kind == "layer_norm":  # LayerNorm.forward's ctx
        d = m.params["d"]
        ctx._saved = (ins[0].reshape(-1, d), ins[1].reshape(-1), outs[("mean", k)], outs[("rstd", k)])
        ctx.shape, ctx.has_w, ctx.has_b, ctx.w_shape = ins[0].shape, True, True, ins[1].shape


# -- planning ----------------------------------------------------------------------------------------------
def plan(steps, meta, read_outside, output_ops, expand):
    """Replace runs of fusable op steps by ("fused", group) steps. ``meta[j]``: (input shapes, input
    dtypes, output shape, output dtype) of op j; ``read_outside(j, group_steps)``: whether op j's value
    is read by a step outside those; ``output_ops``: ops whose value the call returns."""
    runs, current = [], None
    for s, step in enumerate(steps):
        member = _candidate(step, meta) if step[0] == "op" else None
        if member is None:
            current = None
            continue
        if current is not None and _joins(current, step, member, expand):
            current[1].append((s, step, member))
        elif member[0] != "layer_norm":  # (a layer norm only ends a group)
            current = (s, [(s, step, member)])
            runs.append(current)
        else:
            current = None
    groups = {}
    for start, items in runs:
        if len(items) < 2:
            continue
        group = _group(items, meta, expand)
        inside = {s for s, _, _ in items}
        for k, m in enumerate(group.members):
            consumer_saves = any(src == ("mem", k) and o.kind in _SAVE_INPUTS for o in group.members
                                 for src in o.sources)
            if (k == len(group.members) - 1 or m.kind in _SAVE_OUTPUT or consumer_saves
                    or read_outside(m.j, inside) or m.j in output_ops):
                group.stored.append(k)
            if m.kind in _DERIV and m.needs[0]:
                group.derivs.append(k)
            if m.kind == "layer_norm":
                group.stats.append(k)
            if m.j in output_ops:
                group.escapes.add(k)
        groups[start] = (group, inside)
    new_steps = []
    for s, step in enumerate(steps):
        for start, (group, inside) in groups.items():
            if s == start:
                new_steps.append(("fused", group))
            if s in inside:
                break
        else:
            new_steps.append(step)
    return new_steps, [g for g, _ in groups.values()]


def _candidate(step, meta):
    """(kind, shape, layouts, cols) of an op step that may join a group, or None."""
    _, j, fn, inputs, params, dynamic, needs, dtype = step
    kind = kind_of(fn, params)
    if kind is None or dtype != _F32 or dynamic:
        return None
    in_shapes, in_dtypes, shape, _ = meta[j]
    if math.prod(shape) == 0 or any(d != _F32 for d in in_dtypes):
        return None
    layouts, cols = [], None
    for s in in_shapes:
        if tuple(s) == tuple(shape):
            layouts.append("full")
            continue
        if math.prod(s) == 1:
            layouts.append("scalar")
            continue
        trimmed = tuple(s)
        while trimmed and trimmed[0] == 1:
            trimmed = trimmed[1:]
        if len(trimmed) > len(shape) or tuple(shape[len(shape) - len(trimmed):]) != trimmed:
            return None
        size = math.prod(trimmed)
        if cols not in (None, size):
            return None
        layouts.append("cols")
        cols = size
    return kind, tuple(shape), layouts, cols


def _joins(current, step, member, expand):
    """Whether ``step`` extends the run ``current``: same shape and cols, reads a member's value
    directly, and reads none through a view (that array would not exist)."""
    items = current[1]
    kind, shape, layouts, cols = member
    first = items[0][2]
    if shape != first[1] or items[-1][2][0] == "layer_norm":
        return False
    member_ops = {it[1][1] for it in items}
    if kind == "layer_norm" and (layouts != ["full", "cols", "cols"] or step[4]["d"] != cols
                                 or step[3][0][0] != "op" or step[3][0][1] not in member_ops):
        return False  # (it normalises a value of the group, over the group's cols)
    group_cols = next((c for _, _, (_, _, _, c) in items if c is not None), None)
    if cols is not None and group_cols is not None and cols != group_cols:
        return False
    kinds = {it[2][0] for it in items}
    if (kinds | {kind}) & codegen.FAST_KINDS and kinds & {"mul", "dropout"}:
        return False  # (a fastmath kernel may contract that product with a later add: one rounding, not two)
    direct = False
    for ref in step[3]:
        if ref[0] == "op" and ref[1] in member_ops:
            direct = True
        elif any(r[0] == "op" and r[1] in member_ops for r in expand(ref)):
            return False
    return direct


def _group(items, meta, expand):
    shape = items[0][2][1]
    cols = next((c for _, _, (_, _, _, c) in items if c is not None), None) or (shape[-1] if shape else 1)
    group = Group(shape, cols)
    member_of = {}
    for _, step, (kind, _, layouts, _) in items:
        _, j, fn, inputs, params, dynamic, needs, _ = step
        sources = []
        for ref, layout in zip(inputs, layouts):
            if ref[0] == "op" and ref[1] in member_of:
                sources.append(("mem", member_of[ref[1]]))
            else:
                sources.append(("ext", len(group.externals)))
                group.externals.append(ref)
                group.layouts.append(layout)
        member_of[j] = len(group.members)
        group.members.append(Member(j, fn, kind, sources, params, needs))
    return group
