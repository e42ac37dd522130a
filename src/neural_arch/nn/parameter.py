"""``Parameter``: a Tensor that a Module registers as one of its learnable weights.

A Parameter is an ordinary leaf Tensor with ``requires_grad=True`` whose
*type* tells ``Module.__setattr__`` to register it. It adds no slots, so
every op, the engine and ``Function.apply`` treat it exactly like a Tensor
(``isinstance(p, na.Tensor)`` holds) and Tensor's fast paths are untouched.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor, format_tensor
from neural_arch.backend.device import to_device
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype


class Parameter(Tensor):
    """A learnable tensor of a Module, like ``torch.nn.Parameter``.

    ``Parameter(data)`` shares memory with ``data`` (a Tensor or an array),
    as torch's does. ``requires_grad`` defaults to True.
    """

    __slots__ = ()  # keep Tensor's memory layout and fast attribute access

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + format_tensor(self)

    def __reduce_ex__(self, protocol):
        # Rebuild as a Parameter (pickle / deepcopy): data and requires_grad are what defines it.
        return (Parameter, (self.data, self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        data = self.data
        out = Parameter(data.copy(order="K") if isinstance(data, np.ndarray) else data.copy(), self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor._wrap(self.grad.data.copy())
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """A marker, like ``torch.nn.Buffer``: ``module.name = Buffer(t, persistent=False)`` registers
    ``t`` as a buffer (a plain Tensor sharing its memory), as ``register_buffer`` would."""

    __slots__ = ("persistent",)

    def __init__(self, data, *, persistent: bool = True):
        super().__init__(data)
        self.persistent = persistent


def empty_param(*shape, dtype=None, device=None, order: str = "C") -> Parameter:
    """An uninitialised Parameter of ``shape`` (the module's ``reset_parameters`` fills it), as the
    layers build their weights: ``dtype`` defaults to the default dtype; ``order`` is its memory
    layout on the CPU ("C" or "F")."""
    arr = np.empty(shape, dtype=get_default_dtype() if dtype is None else resolve_dtype(dtype), order=order)
    if device is not None and str(device) != "cpu":
        arr = to_device(arr, device)
    return Parameter(arr)
