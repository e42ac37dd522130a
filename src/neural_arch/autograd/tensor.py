"""``Tensor``: an array, the gradient it may accumulate, and the node that made it.

A Tensor is deliberately small (five slots) because one is created for every
op of every training step. Math on tensors lives in :mod:`neural_arch.ops`;
``ops/tensor_methods.py`` attaches it here as methods and operators (the one
place the layers meet).
"""

from __future__ import annotations

import weakref

import numpy as np

from neural_arch.autograd import capture as _capture
from neural_arch.autograd import function as _function
from neural_arch.autograd.engine import backward as _backward
from neural_arch.autograd.function import Function
from neural_arch.autograd.grad_mode import STATE
from neural_arch.backend import device as _device
from neural_arch.backend.dtypes import get_default_dtype, is_floating, resolve_dtype
from neural_arch.backend.kernels.half import convert
from neural_arch.errors import DTypeError, GradientError, ShapeError, shape_str


def _convert(data, dtype=None):
    """Python data, NumPy/CuPy arrays or Tensors -> an array, choosing dtypes as torch does."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = resolve_dtype(dtype)
    if isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__"):
        arr = data
    else:
        arr = np.asarray(data)
        if arr.dtype == np.float64 and dtype is None and not isinstance(data, np.generic):
            arr = arr.astype(get_default_dtype())  # Python floats -> the default dtype
        elif arr.dtype.kind in "OUS":
            raise DTypeError(f"cannot make a tensor from {type(data).__name__} holding {arr.dtype} values")
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation.

    Create one with :func:`neural_arch.tensor` (or the factories ``zeros``,
    ``randn``, ...). ``requires_grad=True`` makes it a *leaf* whose ``.grad``
    is filled by ``backward()``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "__weakref__")
    __array_priority__ = 1000  # so ndarray <op> Tensor defers to Tensor's reflected operator

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        arr = _convert(data, dtype)
        if device is not None:
            arr = _device.to_device(arr, device)
        self.data = arr
        self.grad = None
        self._ctx = None
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(array, requires_grad: bool = False) -> Tensor:
        """Fast path: wrap an existing array without checks or copies."""
        t = Tensor.__new__(Tensor)
        t.data = array
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        t._hooks = None
        return t

    # -- what it is ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    ndim = property(dim)

    def numel(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> _device.Device:
        return _device.device_of(self.data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def is_floating_point(self) -> bool:
        return is_floating(self.data.dtype)

    def element_size(self) -> int:
        return self.data.itemsize

    def stride(self, dim: int | None = None):
        strides = tuple(s // self.data.itemsize for s in self.data.strides)
        return strides if dim is None else strides[dim]

    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    def data_ptr(self) -> int:
        return self.data.__array_interface__["data"][0] if isinstance(self.data, np.ndarray) else self.data.data.ptr

    # -- leaving the graph / the framework -------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the cpu, like torch)."""
        if self.requires_grad and STATE.grad_enabled:
            raise GradientError(
                "numpy() on a tensor that requires grad: call .detach().numpy() to leave the graph"
            )
        if _capture.ACTIVE is not None:
            _capture.ACTIVE.on_read(self, "numpy()")
        return _device.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        if _capture.ACTIVE is not None:
            _capture.ACTIVE.on_read(self, "np.asarray()")
        arr = _device.to_numpy(self.data)
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        if self.data.size != 1:
            raise ShapeError(
                f"item(): only a one-element tensor converts to a Python number, got shape {shape_str(self.shape)}"
            )
        if _capture.ACTIVE is not None:
            _capture.ACTIVE.on_read(self, "item()")
        return self.data.reshape(()).item()

    def tolist(self):
        if _capture.ACTIVE is not None:
            _capture.ACTIVE.on_read(self, "tolist()")
        return _device.to_numpy(self.data).tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory)."""
        return Tensor._wrap(self.data)

    def detach_(self) -> Tensor:
        self._ctx = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph."""
        return Clone.apply(self)

    def contiguous(self) -> Tensor:
        return self if self.data.flags.c_contiguous else Clone.apply(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not is_floating(self.data.dtype) and self.data.dtype.kind != "c":  # complex: fft
            raise DTypeError(
                f"only floating-point tensors can require gradients, this one is {self.data.dtype}; "
                "convert it first, e.g. .float()"
            )
        if not self.is_leaf and not requires_grad:
            raise GradientError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, *args, **kwargs) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)``;
        returns ``self`` when nothing changes. Both conversions are differentiable."""
        kwargs.pop("copy", None)
        device, dtype = to_arguments(args, kwargs)
        out = self
        if dtype is not None:
            dtype = resolve_dtype(dtype)
            if dtype != out.data.dtype:
                # casting to an integer or bool dtype leaves the graph (no gradient exists), as in torch
                differentiable = is_floating(dtype) or dtype.kind == "c"
                out = Cast.apply(out, dtype=dtype) if differentiable else Tensor._wrap(out.data.astype(dtype))
        if device is not None and _device.Device(device) != out.device:
            out = ToDevice.apply(out, device=_device.Device(device))
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Tensor:
        return self.to("cuda" if device is None else f"cuda:{device}")

    def type(self, dtype=None):
        return str(self.data.dtype) if dtype is None else self.to(dtype)

    float = lambda self: self.to(np.float32)  # noqa: E731
    double = lambda self: self.to(np.float64)  # noqa: E731
    half = lambda self: self.to(np.float16)  # noqa: E731
    long = lambda self: self.to(np.int64)  # noqa: E731
    int = lambda self: self.to(np.int32)  # noqa: E731
    bool = lambda self: self.to(np.bool_)  # noqa: E731

    def bfloat16(self) -> Tensor:
        return self.to("bfloat16")

    # -- autograd -----------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        A non-scalar tensor needs ``gradient`` (the vector in the
        vector-Jacobian product). The graph is freed afterwards unless
        ``retain_graph=True``.
        """
        _backward(self, gradient, retain_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a
        non-None return value replaces the gradient. Returns a handle whose
        ``remove()`` unregisters the hook."""
        if not self.requires_grad:
            raise GradientError("register_hook on a tensor that does not require grad")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self._ctx._out_hooks is None:
                self._ctx._out_hooks = []
            hooks = self._ctx._out_hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise GradientError("retain_grad() on a tensor that does not require grad")
        if self._ctx is not None:
            self._ctx._retained = weakref.ref(self)

    # -- Python protocol ------------------------------------------------------------------------
    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ShapeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; use .any() or .all()"
            )
        if _capture.ACTIVE is not None:
            _capture.ACTIVE.on_read(self, "bool()")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of one element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return format_tensor(self)

    def __setitem__(self, index, value) -> None:
        """In-place assignment, allowed on tensors that need no gradient."""
        if self.requires_grad and STATE.grad_enabled:
            raise GradientError(
                "in-place assignment to a tensor that requires grad would break its gradient; "
                "do it under no_grad(), or build a new tensor (e.g. with where / masked_fill)"
            )
        if _capture.ACTIVE is not None:
            _capture.ACTIVE.on_write(self)
        self.data[normalize_index(index)] = value.data if isinstance(value, Tensor) else value


def to_arguments(args, kwargs: dict) -> tuple:
    """(device, dtype) from the arguments of torch's ``Tensor.to`` / ``Module.to``: a device, a dtype, both,
    or a tensor to match (``non_blocking`` is accepted and ignored); either may be None."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, _device.Device) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda")):
            device = a
        else:
            dtype = a
    return device, dtype


def zero_grads(params, set_to_none: bool = True) -> None:
    """Reset each parameter's ``.grad``: to None (torch's default), or to zeros in place."""
    for p in params:
        if p.grad is not None:
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0


def normalize_index(index):
    """Tensors and lists inside an index become arrays (bool stays a mask, ints int64)."""
    if isinstance(index, tuple):
        return tuple(_index_item(i) for i in index)
    return _index_item(index)


def _index_item(i):
    if isinstance(i, Tensor):
        i = i.data
        if i.dtype.kind == "f":
            raise DTypeError(f"tensors used as indices must be integer or bool, got {i.dtype}")
        return i
    if isinstance(i, list):
        arr = np.asarray(i)
        if arr.dtype.kind == "f":
            raise DTypeError("index lists must hold integers or bools")
        return arr
    return i


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


_function._Tensor = Tensor


class Clone(Function):
    """y = copy(x)        dy/dx = 1"""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class Cast(Function):
    """y = x as dtype     dL/dx = dL/dy as x's dtype (zero path for integer inputs)"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return convert(x, dtype)  # (float32 <-> bfloat16 by the bit kernels: autocast's parameter copies)

    @staticmethod
    def backward(ctx, grad):
        if grad.dtype.kind == "c" and ctx.in_dtype.kind != "c":  # real -> complex: the real part flows back
            grad = grad.real
        return convert(grad, ctx.in_dtype)


class ToDevice(Function):
    """y = x copied to a device     dL/dx = dL/dy copied back"""

    @staticmethod
    def forward(ctx, x, device):
        ctx.in_device = _device.device_of(x)
        return _device.to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return _device.to_device(grad, ctx.in_device)


def _float_formatter(a64: np.ndarray):
    """torch's rule for printing floats: ``1.`` when every value is integral,
    ``1.0000`` otherwise, ``1.0000e+00`` when the magnitudes span more than
    1000x or reach 1e8 (or, for non-integral values, go below 1e-4); every
    element padded to one width."""
    values = a64[np.isfinite(a64) & (a64 != 0)]
    finite = np.abs(values)
    if finite.size == 0:
        fmt = lambda v: f"{v:.0f}."  # noqa: E731
    else:
        lo, hi = finite.min(), finite.max()
        integral = bool(np.all(finite == np.ceil(finite)))
        sci = hi / lo > 1000.0 or hi > 1e8 or (not integral and lo < 1e-4)
        fmt = (lambda v: f"{v:.4e}") if sci else (lambda v: f"{v:.0f}.") if integral else (lambda v: f"{v:.4f}")
    # as torch: the width comes from the finite non-zero values only, so nan/inf/-0. may stick out
    width = max((len(fmt(v)) for v in values), default=1)
    return lambda v: (fmt(v) if np.isfinite(v) else str(v)).rjust(width)


def format_tensor(t: Tensor) -> str:
    """torch-like repr: ``tensor([1.0000, 2.5000], requires_grad=True)``.

    Values, padding, summarisation (``...`` past 1000 elements) and the
    suffixes (dtype when not float32/int64/bool, size of empty tensors,
    device, grad_fn or requires_grad) follow torch. Differences: grad_fn
    names carry no ``0`` suffix (``<MulBackward>``) and dtypes print without
    ``torch.``; line wrapping is NumPy's.
    """
    arr = _device.to_numpy(t.data)
    opts = {"separator": ", ", "prefix": "tensor(", "threshold": 1000, "edgeitems": 3, "max_line_width": 80}
    floating = is_floating(arr.dtype)
    dtype_name = "bfloat16" if arr.dtype.name == "bfloat16" else str(arr.dtype)
    suffixes = []
    if arr.size == 0:
        body = "[]"
        if arr.ndim != 1:
            suffixes.append(f"size={shape_str(arr.shape)}")
        if arr.dtype != get_default_dtype():  # nothing to infer an int dtype from, so it is shown
            suffixes.append(f"dtype={dtype_name}")
    else:
        if floating:
            a64 = arr.astype(np.float64)
            body = np.array2string(a64, **opts, formatter={"float_kind": _float_formatter(a64)})
        else:
            body = np.array2string(arr, **opts)
        if arr.dtype not in (get_default_dtype(), np.dtype(np.int64), np.dtype(np.bool_)):
            suffixes.append(f"dtype={dtype_name}")
    if t.device.type != "cpu":
        suffixes.insert(0, f"device='{t.device}'")  # torch puts the device first
    if t._ctx is not None:
        suffixes.append(f"grad_fn=<{type(t._ctx).__name__}Backward>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in suffixes) + ")"
