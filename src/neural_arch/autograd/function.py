"""``Function``: one differentiable op, forward and backward side by side.

A subclass defines two static methods on raw arrays::

    class Mul(Function):
        '''z = x * y        dz/dx = y,  dz/dy = x'''

        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * y, grad * x

and is called as ``Mul.apply(a, b, **params)``: positional arguments are the
Tensor inputs, keyword arguments are plain parameters passed to ``forward``.
``backward`` returns one gradient per Tensor input (or ``None``), each in the
*broadcast* shape of the output if that is easier: the engine sums gradients
back to each input's shape in one place (:func:`unbroadcast`).

The ``ctx`` object is the graph node. It keeps, per input, where its gradient
goes (``parents``: the node that made the input, or the input itself when it is
a leaf), the shape of its own output, and whatever ``forward`` saved -- never
the intermediate tensors themselves, so an activation's memory is freed as soon
as nothing but the graph would hold it (as in torch). The engine drops the saved
arrays after backward unless ``retain_graph``.

Half precision is decided here too, once per call: an op class whose ``half`` attribute is
``"float32"`` and that meets a float16/bfloat16 input runs ``forward`` (and later ``backward``) on
float32 copies and has its results rounded once to the input's dtype; one whose ``half`` is
``"unsupported"`` refuses such an input with a DTypeError; every other call goes straight to the op's
own methods. What the attribute means, for op authors: ``ops/_half.py``.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from neural_arch.autograd.grad_mode import STATE
from neural_arch.backend.device import device_of
from neural_arch.backend.dtypes import bfloat16, float16
from neural_arch.backend.kernels.half import to_float32, to_half
from neural_arch.backend.memory import keep_freed_memory
from neural_arch.errors import (
    DeviceError,
    DTypeError,
    GradientError,
    IndexingError,
    NeuralArchError,
    NumericalError,
    ShapeError,
    shape_str,
)

_ndarray = np.ndarray
_F32 = np.dtype(np.float32)
_F16, _BF16 = float16, bfloat16  # (bfloat16 is None without ml_dtypes: no array has that dtype then)


class Function:
    """One differentiable op: subclass it, write ``forward(ctx, *arrays, **params)`` and ``backward(ctx, grad)``.

    Call it as ``MyOp.apply(*tensors, **params)``: ``apply`` unwraps the tensors, runs ``forward`` on their
    arrays, and (when a gradient is needed) records the node the engine walks back through ``backward``,
    which returns one gradient per input (or None). See DESIGN.md "How an op looks".
    """
    __slots__ = ("parents", "needs_input_grad", "out_shape", "_saved", "_out_hooks", "_retained", "__dict__")

    # True for an op whose forward draws from a random generator (dropout): running it again draws
    # anew. ``na.compile`` refuses to capture random draws made anywhere else.
    draws_random = False
    # The op's autocast policy (``autograd/autocast.py``): None follows the inputs; LOWER, FP32, PROMOTE cast them.
    autocast = None
    # How the op meets float16/bfloat16 inputs (``ops/_half.py``): "float32" computes in float32 and rounds
    # the results once to the input's dtype; None runs forward and backward on the half arrays themselves;
    # "unsupported" raises a DTypeError (ops torch has no half CPU kernel for).
    half = None
    # With ``half = "float32"``: positions in what forward saves that are dropped when the inputs are half
    # (backward finds None there and recomputes them from the rest): attention's probabilities, which
    # torch's CPU attention does not keep either, and which would take twice the memory of its inputs.
    half_recomputed = ()
    # Set on a node whose forward ran in float32 for half inputs: per input, (dtype, shape) or None.
    _half_in = None
    # ``save_only(ctx, *arrays, **params)``: save on ctx what ``forward`` saves, and compute nothing. Ops whose
    # backward needs only their inputs (products, sums) define it, and their forward calls it (one place for
    # what is saved). Activation checkpointing (``autograd/checkpoint.py``) then skips, in a recomputation,
    # the forward of such an op when nothing downstream reads its output (a block's last product).
    save_only = None

    # -- the two methods a subclass writes -------------------------------------------------
    @staticmethod
    def forward(ctx, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- what forward uses on ctx ----------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is None:
            raise GradientError(
                f"{type(self).__name__}: trying to backward through the graph a second time, but "
                "its saved arrays were freed after the first backward. Pass "
                "retain_graph=True to the first backward() if you need to call it twice."
            )
        return saved

    # -- the call ----------------------------------------------------------------------------
    @classmethod
    def apply(cls, *inputs, **params):
        """Run ``forward`` on the inputs' arrays and, if any input needs a
        gradient (and grad mode is on), record the node for backward."""
        # Everything beyond the plain path (the process's first op, autocast, a checkpointed region's
        # recomputation, a tracer, an op with a half policy) hides behind two tests: ``_watched``, one
        # module flag kept up to date by whoever sets those hooks, and ``cls.half``.
        narrow = None
        if _watched:
            inputs, narrow = _enter(cls, inputs)
        ctx = cls.__new__(cls)
        ctx._saved = ()
        # Unary and binary calls are written out: building a tuple by a comprehension costs more
        # than all the rest of a small op's bookkeeping here.
        n = len(inputs)
        if not STATE.grad_enabled:
            requires_grad = False
        elif n == 2:
            a, b = inputs
            need_a, need_b = a.requires_grad, b.requires_grad
            requires_grad = need_a or need_b
            if requires_grad:
                needs = (need_a, need_b)
                parents = ((a._ctx or a) if need_a else None, (b._ctx or b) if need_b else None)
        elif n == 1:
            a = inputs[0]
            requires_grad = a.requires_grad
            if requires_grad:
                needs, parents = (True,), (a._ctx or a,)
        else:
            needs = tuple([t.requires_grad for t in inputs])
            requires_grad = True in needs
            if requires_grad:
                parents = tuple([(t._ctx or t) if t.requires_grad else None for t in inputs])
        if requires_grad:
            # an edge per input: its node, or the leaf itself (whose .grad backward fills), or None (no grad)
            ctx.parents = parents
            ctx.needs_input_grad = needs
            ctx._out_hooks = None
            ctx._retained = None
        else:
            ctx.needs_input_grad = (False,) * n
        half = None if cls.half is None else _half_input(inputs)
        try:
            if _watched or half is not None:
                out = _forward_watched(cls, ctx, inputs, params, narrow, half)
            elif n == 2:
                out = cls.forward(ctx, inputs[0].data, inputs[1].data, **params)
            elif n == 1:
                out = cls.forward(ctx, inputs[0].data, **params)
            else:
                out = cls.forward(ctx, *[t.data for t in inputs], **params)
        except NeuralArchError:
            raise
        except (ValueError, TypeError, IndexError) as exc:
            raise _diagnose(cls, inputs, exc) from exc
        if type(out) is not _ndarray:
            out = _as_array(out)
        if STATE.anomaly:
            check_finite(out, f"the forward of {cls.__name__}")
        t = _Tensor.__new__(_Tensor)
        t.data = out
        t.grad = None
        t._hooks = None
        if requires_grad:
            t.requires_grad = True
            t._ctx = ctx
            ctx.out_shape = out.shape  # for summing broadcast gradients back (the output may be freed)
        else:
            t.requires_grad = False
            t._ctx = None
        if _watched and _tracer is not None:  # graph.trace is recording
            _tracer(cls, inputs, params, t)
        return t

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"

    name = property(lambda self: type(self).__name__ + "Backward")


def _enter(cls, inputs):
    """Before a watched op's node is made: the process's first op starts neural-arch's work; autocast
    casts the inputs as ``cls``'s policy says. Returns the inputs and the dtype the output must have
    (None: leave it)."""
    if _first_op:
        _start_work()
    if _autocast is not None:  # some thread is inside autocast
        return _autocast(cls, inputs)
    return inputs, None


def _forward_watched(cls, ctx, inputs, params, narrow, half):
    """``cls.forward`` for a watched call or half inputs of an op with a half policy: a checkpointed
    region's recomputation may answer with a stand-in output; half inputs (``half``: the dtype of the
    first) of a ``half = "float32"`` op run in float32; a low-precision op whose kernel returned float32
    is rounded to ``narrow``."""
    out = None if _replay is None else _replay(cls, ctx, inputs, params)
    if out is None:
        arrays = [t.data for t in inputs]
        if half is not None:
            out = _forward_in_float32(cls, ctx, arrays, params, half)
        else:
            out = cls.forward(ctx, *arrays, **params)
    if narrow is not None:
        if type(out) is not _ndarray:
            out = _as_array(out)
        if out.dtype != narrow:
            out = out.astype(narrow)
    return out


def _start_work() -> None:
    """What neural-arch changes process-wide, done when its first op runs, not at import: the
    allocation policy (``backend/memory.py``; ``NEURAL_ARCH_KEEP_MEMORY=0`` turns it off)."""
    global _first_op, _watched
    _first_op = False
    _watched = _any_hook()
    keep_freed_memory()


_Tensor = None  # set by tensor.py: Function creates Tensors, Tensor calls Functions

_first_op = True  # no op has run yet in this process

# ``graph.trace`` sets this to a callable ``(cls, inputs, params, out)`` while it records a model;
# None the rest of the time.
_tracer = None

# ``autograd.checkpoint`` sets this to a callable ``(cls, ctx, inputs, params) -> array or None`` while a
# checkpointed region runs: called before each forward, it numbers the calls and, in a recomputation, answers
# for the ones whose forward it skips (after ``cls.save_only``) with a stand-in output. None otherwise.
_replay = None

# ``autograd.autocast`` sets this to its ``cast_inputs(cls, inputs) -> (inputs, narrow)`` while autocast is on
# in some thread; ``narrow`` is the dtype a LOWER op's output must have (None: leave it).
_autocast = None

_HOOKS = ("_first_op", "_tracer", "_replay", "_autocast")


def _any_hook() -> bool:
    return _first_op or _tracer is not None or _replay is not None or _autocast is not None


# True while any of the four hooks above is set: the one module global ``apply`` tests on every op.
_watched = True


class _Module(types.ModuleType):
    """This module's type: setting one of the hooks from outside (``function._tracer = t``, as graph,
    compile, checkpoint and autocast do, or a test's monkeypatch) brings ``_watched`` up to date, so that
    no setter function has to be remembered."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in _HOOKS:
            super().__setattr__("_watched", _any_hook())


sys.modules[__name__].__class__ = _Module


def _is_half(a) -> bool:
    """A NumPy array of float16 or bfloat16 (CuPy arrays and float32/64 are not)."""
    return isinstance(a, _ndarray) and (a.dtype == _F16 or (_BF16 is not None and a.dtype == _BF16))


def _half_input(inputs):
    """The dtype of the first half array among the tensors ``inputs``, or None (the test ``apply`` makes for
    an op with a half policy: an itemsize first, so that float32 and float64 arrays cost one comparison)."""
    for t in inputs:
        a = t.data
        if a.dtype.itemsize == 2 and _is_half(a):
            return a.dtype
    return None


def forward_arrays(cls, ctx, arrays, params):
    """``cls.forward`` on ``arrays`` as ``apply`` runs it, the float32 path included, for code that replays
    recorded ops without ``apply`` (``na.compile``), whose backward is then ``ctx.backward(ctx, grad)``."""
    half = None if cls.half is None else next((a.dtype for a in arrays if _is_half(a)), None)
    if half is not None:
        return _forward_in_float32(cls, ctx, arrays, params, half)
    return cls.forward(ctx, *arrays, **params)


def _forward_in_float32(cls, ctx, arrays, params, dtype):
    """``cls.forward`` on float32 copies of the half arrays, its output rounded once to ``dtype``.

    What forward saved is kept in half again where it is an input or the output (what torch keeps, so
    saved activations take half the memory); dropped where ``cls.half_recomputed`` lists it; float32
    statistics it computed (a norm's mean and rstd) stay float32. Inputs that are not half (masks,
    targets, indices) keep their dtype throughout.
    """
    if cls.half != "float32":
        raise DTypeError(
            f"{cls.__name__}: no {dtype.name} implementation (torch has no CPU kernel for it either); "
            "cast the input to float32 first (x.float())"
        )
    wide = [to_float32(a) if _is_half(a) else a for a in arrays]
    out = cls.forward(ctx, *wide, **params)
    ctx._half_in = tuple([(a.dtype, a.shape) if _is_half(a) else None for a in arrays])
    ctx.backward = backward_in_float32  # the node's own backward: the engine calls ctx.backward(ctx, grad) alone
    if isinstance(out, np.generic):  # a full reduction's NumPy scalar
        out = np.asarray(out)
    narrow = to_half(out, dtype) if isinstance(out, _ndarray) and out.dtype == _F32 else out
    saved = ctx._saved
    if saved:
        originals = {id(w): a for w, a in zip(wide, arrays) if w is not a}
        originals[id(out)] = narrow
        dropped = cls.half_recomputed
        ctx._saved = tuple([None if i in dropped else originals.get(id(s), s) if isinstance(s, _ndarray) else s
                            for i, s in enumerate(saved)])
    return narrow


def backward_in_float32(ctx, grad):
    """The backward of a node whose forward ran in float32 (``ctx._half_in`` set): ``ctx.backward`` on
    the float32 gradient and saved arrays, each input's gradient summed to its shape in float32 and
    rounded once to its dtype. ``_forward_in_float32`` sets it as such a node's ``backward`` (an instance
    attribute, before the class's), so the engine's walk has no test of its own for it."""
    saved = ctx._saved
    if saved:
        ctx._saved = tuple([to_float32(s) if _is_half(s) else s for s in saved])
    try:
        grads = type(ctx).backward(ctx, to_float32(grad) if _is_half(grad) else grad)
    finally:
        if saved:
            ctx._saved = saved  # (half again: retain_graph keeps the small copies)
    single = not isinstance(grads, tuple)
    grads = (grads,) if single else grads
    inputs = ctx._half_in
    out = tuple([_narrow(g, i) for g, i in zip(grads, inputs)]) + grads[len(inputs):]
    return out[0] if single else out


def _narrow(grad, half_input):
    if half_input is None or not isinstance(grad, _ndarray):
        return grad
    dtype, shape = half_input
    grad = unbroadcast(grad, shape)  # a gradient in the broadcast shape is summed in float32, then rounded once
    return to_half(grad, dtype) if grad.dtype == _F32 else grad.astype(dtype)


def _as_array(out):
    """NumPy reductions return NumPy scalars; keep every tensor's data an array."""
    if isinstance(out, np.generic) or not hasattr(out, "shape"):
        return np.asarray(out)
    return out  # a CuPy array


def check_finite(array, where: str) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        raise NumericalError(f"{where} produced {bad} (detect_anomaly is on)")


def _diagnose(cls, inputs, exc: Exception) -> Exception:
    """Turn a low-level error from forward into a typed one that names the op."""
    name = cls.__name__
    devices = {str(device_of(t.data)) for t in inputs}
    if len(devices) > 1:
        return DeviceError(
            f"{name}: inputs are on different devices ({', '.join(sorted(devices))}); "
            "move them to one device with .to(device) first"
        )
    shapes = ", ".join(shape_str(t.shape) for t in inputs)
    msg = str(exc)
    if isinstance(exc, IndexError):
        return IndexingError(f"{name}: {msg} (input shapes {shapes})")
    if "broadcast" in msg or "shape" in msg or "dimension" in msg or "axis" in msg or "size" in msg:
        return ShapeError(f"{name}: incompatible shapes {shapes}: {msg}")
    if isinstance(exc, TypeError):
        dtypes = ", ".join(str(t.dtype) for t in inputs)
        return DTypeError(f"{name}: cannot apply to dtypes ({dtypes}): {msg}")
    return exc


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``: undo NumPy broadcasting (the one place it is done).

    Leading axes that broadcasting added are summed away; axes where the
    input had size 1 are summed with keepdims.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead < 0:
        raise ShapeError(f"gradient of shape {shape_str(grad.shape)} cannot be reduced to {shape_str(shape)}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        if grad.dtype.itemsize == 2:  # float16/bfloat16: accumulate in float32, round once (as torch)
            grad = grad.sum(axis=axes, dtype=np.float32).astype(grad.dtype)
        else:
            grad = grad.sum(axis=axes)
    return grad.reshape(shape)
