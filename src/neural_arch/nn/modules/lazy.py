"""Lazy modules: layers whose input size is read from the first input, as torch's ``LazyLinear`` & co.

A lazy layer starts with :class:`UninitializedParameter` weights (no shape yet). Its first forward
materialises them from the input's shape, runs the layer's own ``reset_parameters`` (torch's init),
and turns the module into its ordinary class (``cls_to_become``: a LazyLinear becomes a Linear).
Build the optimizer after that first call, as with torch.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype, resolve_dtype
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn.modules.conv import Conv1d, Conv2d, ConvTranspose2d
from neural_arch.nn.modules.conv3d import Conv3d, ConvTranspose1d, ConvTranspose3d
from neural_arch.nn.modules.linear import Linear
from neural_arch.nn.modules.module import Module
from neural_arch.nn.modules.normalization import BatchNorm1d, BatchNorm2d, InstanceNorm2d
from neural_arch.nn.modules.normalization_extra import BatchNorm3d, InstanceNorm1d, InstanceNorm3d
from neural_arch.nn.parameter import Parameter

__all__ = [
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d", "LazyConv3d",
    "LazyConvTranspose1d", "LazyConvTranspose2d",
    "LazyConvTranspose3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
    "LazyLinear", "LazyModuleMixin", "UninitializedBuffer", "UninitializedParameter",
]


class UninitializedParameter(Parameter):
    """A Parameter without a shape yet; :meth:`materialize` gives it one (and makes it a Parameter)."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        super().__init__(np.empty((0,), get_default_dtype() if dtype is None else resolve_dtype(dtype)), requires_grad)

    def materialize(self, shape, device=None, dtype=None, order: str = "C") -> None:
        """Allocate ``shape`` (uninitialised values: the module's init fills them) and become a Parameter."""
        dt = self.data.dtype if dtype is None else resolve_dtype(dtype)
        self.data = np.empty(tuple(shape), dtype=dt, order=order)
        self.__class__ = Parameter


class UninitializedBuffer(Tensor):
    """A buffer without a shape yet; :meth:`materialize` gives it one (and makes it a Tensor)."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = False, device=None, dtype=None):
        super().__init__(np.empty((0,), get_default_dtype() if dtype is None else resolve_dtype(dtype)))

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Allocate ``shape`` and become a plain Tensor."""
        self.data = np.empty(tuple(shape), dtype=self.data.dtype if dtype is None else resolve_dtype(dtype))
        self.__class__ = Tensor


class LazyModuleMixin:
    """The first forward materialises the uninitialised parameters (``initialize_parameters(input)``), then
    the module becomes ``cls_to_become`` and runs as that class from then on."""

    cls_to_become: type | None = None

    def has_uninitialized_params(self) -> bool:
        """Whether some parameter or buffer still has no shape."""
        tensors = list(self._parameters.values()) + list(self._buffers.values())
        return any(isinstance(t, (UninitializedParameter, UninitializedBuffer)) for t in tensors)

    def forward(self, input, *args, **kwargs):  # noqa: A002
        self.initialize_parameters(input)  # the first call only: the module changes class below
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become
        return self.forward(input, *args, **kwargs)

    def initialize_parameters(self, input) -> None:  # pragma: no cover - every lazy class defines it
        raise NotImplementedError


class LazyLinear(LazyModuleMixin, Linear):
    """A Linear whose ``in_features`` is the last dim of the first input."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        Module.__init__(self)
        self.in_features, self.out_features = 0, out_features
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)
        else:
            self.register_parameter("bias", None)

    def initialize_parameters(self, input) -> None:
        """weight (out_features, input.shape[-1]) in Linear's layout, bias (out_features,); torch's init."""
        self.in_features = int(input.shape[-1])
        self.weight.materialize((self.out_features, self.in_features), order="F")
        if self.bias is not None:
            self.bias.materialize((self.out_features,))
        self.reset_parameters()


class _LazyConv(LazyModuleMixin):
    def _lazy_init(self, out_channels, bias, dtype):
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def initialize_parameters(self, input) -> None:
        """in_channels from dim 1 of the first input (dim 0 when unbatched), then torch's conv init."""
        nd = len(self.kernel_size)
        if input.ndim not in (nd + 1, nd + 2):
            raise ShapeError(f"{type(self).__name__}: expected a {nd + 1}-d or {nd + 2}-d input, got "
                             f"{shape_str(input.shape)}")
        c = int(input.shape[1] if input.ndim == nd + 2 else input.shape[0])
        if c % self.groups:
            raise ConfigError(f"{type(self).__name__}: the input's {c} channels are not divisible by "
                              f"groups={self.groups}")
        self.in_channels = c
        shape = ((c, self.out_channels // self.groups) if self.transposed else (self.out_channels, c // self.groups))
        self.weight.materialize(shape + tuple(self.kernel_size))
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()


def _lazy_conv(name, base):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, *args, bias: bool = True, dtype=None,
                 device=None, **kwargs):
        # the base builds with in_channels = groups (a placeholder that divides), then the weight is replaced
        groups = kwargs.get("groups", 1)
        base.__init__(self, groups, out_channels, kernel_size, stride, padding, *args, bias=bias, **kwargs)
        self._lazy_init(out_channels, bias, dtype)

    doc = (f"A {base.__name__} whose ``in_channels`` is read from the first input (its other arguments are "
           f"{base.__name__}'s).")
    return type(name, (_LazyConv, base), {"__init__": __init__, "cls_to_become": base, "__doc__": doc,
                                          "__module__": __name__, "__qualname__": name})


LazyConv1d = _lazy_conv("LazyConv1d", Conv1d)
LazyConv2d = _lazy_conv("LazyConv2d", Conv2d)
LazyConv3d = _lazy_conv("LazyConv3d", Conv3d)
LazyConvTranspose1d = _lazy_conv("LazyConvTranspose1d", ConvTranspose1d)
LazyConvTranspose2d = _lazy_conv("LazyConvTranspose2d", ConvTranspose2d)
LazyConvTranspose3d = _lazy_conv("LazyConvTranspose3d", ConvTranspose3d)


class _LazyNorm(LazyModuleMixin):
    _unbatched_ndim = None  # InstanceNorm: the input rank without a batch dim

    def _lazy_init(self, dtype):
        if self.affine:
            self.weight = UninitializedParameter(dtype=dtype)
            if self.bias is not None:
                self.bias = UninitializedParameter(dtype=dtype)
        if self.track_running_stats:
            self.register_buffer("running_mean", UninitializedBuffer(dtype=dtype))
            self.register_buffer("running_var", UninitializedBuffer(dtype=dtype))

    def initialize_parameters(self, input) -> None:
        """num_features from dim 1 of the first input (dim 0 for an unbatched instance norm input)."""
        c = int(input.shape[0] if input.ndim == self._unbatched_ndim else input.shape[1])
        self.num_features = c
        for t in (self.weight, self.bias, self.running_mean, self.running_var):
            if isinstance(t, (UninitializedParameter, UninitializedBuffer)):
                t.materialize((c,))
        self.reset_parameters()


def _lazy_norm(name, base, unbatched_ndim=None):
    # NOTE: torch's lazy norms default to affine=True, track_running_stats=True, instance norms included
    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None):
        base.__init__(self, 0, eps, momentum, affine, track_running_stats, device, dtype)
        self._lazy_init(dtype)

    doc = f"A {base.__name__} whose ``num_features`` is read from the first input."
    return type(name, (_LazyNorm, base), {"__init__": __init__, "cls_to_become": base, "__doc__": doc,
                                          "_unbatched_ndim": unbatched_ndim, "__module__": __name__,
                                          "__qualname__": name})


LazyBatchNorm1d = _lazy_norm("LazyBatchNorm1d", BatchNorm1d)
LazyBatchNorm2d = _lazy_norm("LazyBatchNorm2d", BatchNorm2d)
LazyBatchNorm3d = _lazy_norm("LazyBatchNorm3d", BatchNorm3d)
LazyInstanceNorm1d = _lazy_norm("LazyInstanceNorm1d", InstanceNorm1d, 2)
LazyInstanceNorm2d = _lazy_norm("LazyInstanceNorm2d", InstanceNorm2d, 3)
LazyInstanceNorm3d = _lazy_norm("LazyInstanceNorm3d", InstanceNorm3d, 4)
