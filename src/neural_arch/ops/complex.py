"""Complex tensors in and out: real, imag, conj, angle, view_as_real, view_as_complex,
complex, polar (the fft ops return complex tensors).

Gradients follow torch's convention for complex numbers: for a real loss L and
z = x + iy the gradient is dL/dx + i dL/dy, so that a step z - lr * grad
decreases L (torch's "conjugate Wirtinger" gradient). A complex gradient that
reaches a real input keeps its real part. Ops with a complex-aware backward:
the ones here, ``neural_arch.fft``, add/sub/mul/div, matmul, abs, sums, means,
reshapes and indexing; other ops' backward formulas are written for real numbers.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast_args
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops._operands import binary_operands
from neural_arch.ops.index import getitem

__all__ = ["angle", "complex", "conj", "conj_physical", "imag", "is_complex", "polar", "real", "view_as_complex",
           "view_as_real"]


def _complex_dtype(dtype):
    return np.complex64 if dtype in (np.float32, np.float16) else np.complex128


class Real(Function):
    """y = Re z          dL/dz = g (a real gradient, as complex)"""

    half = "unsupported"

    @staticmethod
    def forward(ctx, z):
        ctx.dtype = z.dtype
        return np.ascontiguousarray(z.real)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype)


class Imag(Function):
    """y = Im z          dL/dz = i g"""

    half = "unsupported"

    @staticmethod
    def forward(ctx, z):
        ctx.dtype = z.dtype
        return np.ascontiguousarray(z.imag)

    @staticmethod
    def backward(ctx, grad):
        return (1j * grad).astype(ctx.dtype)


class Conj(Function):
    """y = conj z        dL/dz = conj g"""

    half = "unsupported"

    @staticmethod
    def forward(ctx, z):
        return np.conj(z)

    @staticmethod
    def backward(ctx, grad):
        return np.conj(grad)


class Angle(Function):
    """y = arg z = atan2(Im z, Re z)      dL/dz = i g z / |z|^2  (0 at z = 0);  real x: 0"""

    half = "float32"

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return np.angle(z).astype(z.real.dtype)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        if z.dtype.kind != "c":
            return np.zeros_like(grad)
        r2 = np.abs(z) ** 2
        return np.where(r2 == 0, 0, 1j * grad * z / np.where(r2 == 0, 1, r2)).astype(z.dtype)


class ViewAsReal(Function):
    """y[..., 0] = Re z, y[..., 1] = Im z         dL/dz = g[..., 0] + i g[..., 1]"""

    half = "unsupported"

    @staticmethod
    def forward(ctx, z):
        ctx.dtype = z.dtype
        return np.stack([z.real, z.imag], axis=-1)

    @staticmethod
    def backward(ctx, grad):
        return (grad[..., 0] + 1j * grad[..., 1]).astype(ctx.dtype)


class Complex(Function):
    """z = x + i y            dL/dx = Re g,  dL/dy = Im g"""

    half = "unsupported"

    @staticmethod
    def forward(ctx, x, y):
        ctx.dtype = x.dtype
        return (x + 1j * y).astype(_complex_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        return grad.real.astype(ctx.dtype), grad.imag.astype(ctx.dtype)


class Polar(Function):
    """z = r e^{i theta}       dL/dr = Re(g conj(e^{i theta})),  dL/dtheta = Re(g conj(i z))"""

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, r, theta):
        unit = np.exp(1j * theta)
        z = (r * unit).astype(_complex_dtype(r.dtype))
        ctx.save_for_backward(unit, z)
        ctx.dtype = r.dtype
        return z

    @staticmethod
    def backward(ctx, grad):
        unit, z = ctx.saved_tensors
        return (grad * np.conj(unit)).real.astype(ctx.dtype), (grad * np.conj(1j * z)).real.astype(ctx.dtype)


def is_complex(x: Tensor) -> bool:
    """Whether the tensor holds complex numbers."""
    return x.data.dtype.kind == "c"


def real(x: Tensor) -> Tensor:
    """The real part (a real tensor is returned as it is)."""
    return Real.apply(x) if is_complex(x) else x


def imag(x: Tensor) -> Tensor:
    """The imaginary part of a complex tensor."""
    if not is_complex(x):
        raise DTypeError(f"imag: expects a complex tensor, got {x.dtype}")
    return Imag.apply(x)


def conj(x: Tensor) -> Tensor:
    """The complex conjugate (a real tensor is returned as it is)."""
    return Conj.apply(x) if is_complex(x) else x


conj_physical = conj


def angle(x: Tensor) -> Tensor:
    """The argument of each element (for real tensors: 0 or pi)."""
    return Angle.apply(x if is_complex(x) or is_floating(x.data.dtype) else x.float())


def view_as_real(x: Tensor) -> Tensor:
    """A complex tensor as a real one with a trailing dim of 2 (real, imaginary). A copy, not a view."""
    if not is_complex(x):
        raise DTypeError(f"view_as_real: expects a complex tensor, got {x.dtype}")
    return ViewAsReal.apply(x)


def view_as_complex(x: Tensor) -> Tensor:
    """A real tensor with a trailing dim of 2 as a complex one. A copy, not a view."""
    (x,) = autocast_args(FP32, x)  # on torch's float32 list: cast before the dtype check
    if x.data.ndim == 0 or x.data.shape[-1] != 2:
        raise ShapeError(f"view_as_complex: the last dim must have size 2, got {shape_str(x.shape)}")
    if x.data.dtype not in (np.float32, np.float64):
        raise DTypeError(f"view_as_complex: expects float32 or float64, got {x.dtype}")
    return Complex.apply(getitem(x, (..., 0)), getitem(x, (..., 1)))


def complex(real: Tensor, imag: Tensor) -> Tensor:  # noqa: A001 - torch's name
    """real + i imag (float32 -> complex64, float64 -> complex128)."""
    real, imag = binary_operands(real, imag)
    if real.data.dtype not in (np.float32, np.float64):
        raise DTypeError(f"complex: expects float32 or float64 parts, got {real.dtype}")
    return Complex.apply(real, imag)


def polar(abs: Tensor, angle: Tensor) -> Tensor:  # noqa: A002
    """abs * e^{i angle}."""
    r, theta = binary_operands(abs, angle)
    return Polar.apply(r, theta)
