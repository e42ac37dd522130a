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
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.grad_mode import STATE
from neural_arch.backend.device import device_of
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


class Function:
    __slots__ = ("parents", "needs_input_grad", "out_shape", "_saved", "_out_hooks", "_retained", "__dict__")

    # True for an op whose forward draws from a random generator (dropout): running it again draws
    # anew. ``na.compile`` refuses to capture random draws made anywhere else.
    draws_random = False

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
        if _first_op:
            _start_work()
        ctx = cls.__new__(cls)
        ctx._saved = ()
        if STATE.grad_enabled:
            needs = tuple([t.requires_grad for t in inputs])
            requires_grad = True in needs
        else:
            requires_grad = False
        if requires_grad:
            # an edge per input: its node, or the leaf itself (whose .grad backward fills), or None (no grad)
            ctx.parents = tuple([(t._ctx or t) if t.requires_grad else None for t in inputs])
            ctx.needs_input_grad = needs
            ctx._out_hooks = None
            ctx._retained = None
        else:
            ctx.needs_input_grad = (False,) * len(inputs)
        try:
            if len(inputs) == 1:  # (a unary op, most of them: no list to build)
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
        if _tracer is not None:  # graph.trace is recording (one global test, as grad mode)
            _tracer(cls, inputs, params, t)
        return t

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"

    name = property(lambda self: type(self).__name__ + "Backward")


_first_op = True  # no op has run yet in this process


def _start_work() -> None:
    """What neural-arch changes process-wide, done when its first op runs, not at import: the
    allocation policy (``backend/memory.py``; ``NEURAL_ARCH_KEEP_MEMORY=0`` turns it off)."""
    global _first_op
    _first_op = False
    keep_freed_memory()


_Tensor = None  # set by tensor.py: Function creates Tensors, Tensor calls Functions

# ``graph.trace`` sets this to a callable ``(cls, inputs, params, out)`` while it records a model;
# None the rest of the time, so that the hot path pays one test of a module global.
_tracer = None


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
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)
