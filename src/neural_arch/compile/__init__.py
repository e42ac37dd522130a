"""``na.compile``: capture a function's ops once, then replay them as a program of arrays.

    step = na.compile(train_step)      # train_step(x, y): zero_grad, forward, loss.backward(), step
    for x, y in loader:
        loss = step(x, y)

How it works (torch.compile's name, a much smaller machine):

1. The first two calls with a given *signature* (the tensors' shapes, dtypes and requires_grad, the
   other arguments' values, grad mode, the ``training`` flag of every module the function reaches)
   run eagerly while ``recording.Recorder`` watches: each op, each ``backward()``, each optimizer
   or scheduler call, in order.
2. ``program.Program`` compares the two recordings and names where every op's inputs come from (an
   argument, an earlier op, a parameter read live, a constant). What changes between the calls in a
   way it cannot name refuses the capture, and that signature stays eager.
3. Later calls replay the program: each op's ``forward`` on arrays, the backward walk in the
   engine's recorded order, the optimizer calls. No Tensor, graph node or engine per op, and each
   intermediate array is dropped after its last reader. With ``fuse=False`` results are bit for bit
   the eager ones: the same functions run on the same arrays in the same order.
4. With ``fuse=True`` (the default) runs of elementwise ops (bias + GELU, dropout + residual add, ...)
   run as numba kernels generated from the recorded ops, writing into arrays allocated once per
   program (``fusion``, ``codegen``), and an Adam/AdamW step runs as one kernel call per parameter
   group (``optimizer``). Each fused op still gets its own graph node, so the backward is unchanged;
   results equal eager within float32 rounding (bit for bit where the fused kernel does the same float
   operations in the same order: all but the fastmath activations). ``compiled.fusion_report`` says
   what was fused and how often it ran.

Refused (the signature runs eagerly; ``fullgraph=True`` raises ``CompileError`` with the reason):
Python that reads a tensor's values (``.item()``, ``if loss > x``), in-place writes outside the ops,
random numbers drawn outside an op, gradient hooks, ``optimizer.step(closure)``, a function that
returns a tensor which needs grad without calling ``backward()`` itself (compile the whole training
step instead), anomaly mode. Autocast's casts are ops of their own (``Cast``), recorded like any other,
and the autocast state is part of the guard. Not done (see NOTES.md): fusing across a reduction (the
residual add into layer_norm), buffers shared between values by liveness, shape-generic
(``dynamic=True``) programs: every new shape is captured anew.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from neural_arch.autograd.autocast import get_autocast_dtype, is_autocast_enabled
from neural_arch.autograd.grad_mode import STATE
from neural_arch.autograd.tensor import Tensor
from neural_arch.compile.program import Program, Refused
from neural_arch.compile.recording import BackwardCall, Recorder
from neural_arch.errors import CompileError
from neural_arch.nn import Module

__all__ = ["compile", "CompiledFunction"]

CACHE_LIMIT = 8  # signatures per function, as torch's cache_size_limit


def compile(fn_or_module=None, *, dynamic: bool = False, fullgraph: bool = False, fuse: bool = True,  # noqa: A001
            **options):
    """Compile a function or module (see the module doc). Usable as ``@na.compile`` or
    ``@na.compile(fullgraph=True)``. ``dynamic`` is accepted for torch's signature; shapes are
    always specialised. Other torch options (``mode``, ``backend``) are accepted and ignored.
    ``fuse=False`` replays every op as eager runs it (bit for bit); with ``fuse=True`` elementwise
    chains run as generated kernels, equal to eager within float32 rounding (``compile.fusion``)."""
    if fn_or_module is None:
        return lambda f: compile(f, dynamic=dynamic, fullgraph=fullgraph, fuse=fuse, **options)
    return CompiledFunction(fn_or_module, fullgraph=fullgraph, fuse=fuse)


class _Entry:
    __slots__ = ("program", "first", "refused")

    def __init__(self):
        self.program = None
        self.first = None  # the first recording, waiting for the second
        self.refused = None


class CompiledFunction:
    """The callable ``na.compile`` returns; attributes of a compiled module pass through to it."""

    def __init__(self, fn, fullgraph: bool = False, fuse: bool = True):
        self._fn = fn
        self._fullgraph = fullgraph
        self._fuse = fuse
        self._cache: dict = {}
        self._modules = _modules_reached(fn)
        functools.update_wrapper(self, fn, updated=())

    def __getattr__(self, name):  # model.parameters(), .eval(), .state_dict() on a compiled module
        return getattr(self.__dict__["_fn"], name)

    @property
    def refusals(self) -> list[str]:
        """Why each refused signature runs eagerly (empty when everything is replayed)."""
        return [e.refused for e in self._cache.values() if e.refused]

    @property
    def programs(self) -> int:
        """How many signatures are replayed."""
        return sum(e.program is not None for e in self._cache.values())

    @property
    def fused_groups(self) -> int:
        """How many elementwise chains the replayed programs run as generated kernels."""
        return sum(len(e.program.groups) for e in self._cache.values() if e.program is not None)

    @property
    def fusion_report(self) -> dict:
        """What fusion did: ``groups`` (chains fused), ``group_runs`` (kernel calls that ran them, or
        their NumPy fallback), ``optimizer_runs`` (optimizer steps run as one call per group)."""
        programs = [e.program for e in self._cache.values() if e.program is not None]
        return {"groups": sum(len(p.groups) for p in programs),
                "group_runs": sum(g.runs for p in programs for g in p.groups),
                "chains": [repr(g) for p in programs for g in p.groups],
                "optimizer_runs": sum(o.runs for p in programs for o in p.optimizers)}

    def __call__(self, *args, **kwargs):
        if STATE.anomaly:
            return self._fn(*args, **kwargs)
        tensors: list = []
        spec = _flatten((args, kwargs), tensors)
        key = (spec, STATE.grad_enabled, tuple(m.training for m in self._modules), autocast_state())
        entry = self._cache.get(key)
        if entry is None:
            if len(self._cache) >= CACHE_LIMIT:
                return self._refuse(None, f"more than {CACHE_LIMIT} signatures", args, kwargs)
            entry = self._cache[key] = _Entry()
        if entry.program is not None:
            return entry.program.run(tensors)
        if entry.refused is not None:
            return self._fn(*args, **kwargs)
        rec = self._record(tensors, args, kwargs)
        if rec.refused is not None:
            entry.first = None
            self._refuse(entry, rec.refused)
        elif entry.first is None:
            entry.first = rec
        else:
            try:
                entry.program = Program(entry.first, rec, fuse=self._fuse)
            except Refused as e:
                self._refuse(entry, str(e))
            entry.first = None
        return rec.output

    def _record(self, tensors, args, kwargs):
        with Recorder(tensors) as recorder:
            out = self._fn(*args, **kwargs)
            rec = recorder.rec
            rec.output = out
            if rec.refused is None and not any(isinstance(e, BackwardCall) for e in rec.events):
                leaves: list = []
                _flatten(out, leaves)
                if any(t._ctx is not None for t in leaves):
                    recorder.refuse("it returns a tensor that needs grad and runs no backward(): compile "
                                    "the whole training step (forward, backward, optimizer), or call it "
                                    "under no_grad()")
        return rec

    def _refuse(self, entry, reason, args=None, kwargs=None):
        name = getattr(self._fn, "__qualname__", type(self._fn).__name__)
        if self._fullgraph:
            raise CompileError(f"na.compile({name}, fullgraph=True): cannot capture: {reason}")
        if entry is not None:
            entry.refused = reason
            return None
        return self._fn(*args, **kwargs)


def _flatten(obj, tensors: list):
    """A hashable description of ``obj`` for the guard; its tensors (and arrays, as tensors) are
    appended to ``tensors`` in order."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        return ("T", obj.data.shape, obj.data.dtype.str, obj.requires_grad)
    if isinstance(obj, np.ndarray):
        tensors.append(Tensor._wrap(obj))
        return ("A", obj.shape, obj.dtype.str)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_flatten(o, tensors) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten(v, tensors)) for k, v in obj.items()))
    if obj is None or isinstance(obj, (bool, int, float, str, np.generic)):
        return ("V", type(obj).__name__, obj)
    return ("O", id(obj))


def _modules_reached(fn) -> list:
    """Every module the function can reach (itself, a bound ``self``, closure and global names),
    with their submodules: their ``training`` flags are part of the guard."""
    roots = []
    if isinstance(fn, Module):
        roots.append(fn)
    target = getattr(fn, "__func__", fn)
    if getattr(fn, "__self__", None) is not None:
        roots.append(fn.__self__)
    if inspect.isfunction(target):
        try:
            found = inspect.getclosurevars(target)
            roots += list(found.nonlocals.values()) + list(found.globals.values())
        except (TypeError, ValueError):
            pass
    seen, modules = set(), []
    for root in roots:
        candidates = [root] if isinstance(root, Module) else [getattr(root, "model", None),
                                                               getattr(root, "module", None)]
        for m in candidates:
            if isinstance(m, Module):
                for sub in m.modules():
                    if id(sub) not in seen:
                        seen.add(id(sub))
                        modules.append(sub)
    return modules


def autocast_state() -> tuple:
    """Autocast on or off, and its dtype, when the call starts: part of the guard (the casts an op
    gets are recorded as Cast ops, which depend on it)."""
    return (True, str(get_autocast_dtype("cpu"))) if is_autocast_enabled("cpu") else (False,)
