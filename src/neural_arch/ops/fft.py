"""Discrete Fourier transforms (torch.fft): complex-to-complex (fft, ifft, fftn, ...),
real-to-complex (rfft, rfftn, ihfft) and complex-to-real (irfft, irfftn, hfft).

Each transform is linear, y = s W x with W the DFT matrix (or its inverse) and s
the ``norm`` scale, so its gradient is the adjoint s W^H g (torch's convention
for complex gradients, see complex.py). The adjoint of a transform with
``norm`` is the opposite-direction transform with the *dual* norm (backward <->
forward, ortho <-> ortho), which has the same scale s. Input sizes ``n``/``s``
crop or zero-pad the input; backward pads or crops the gradient back.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast_args
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.complex import complex as make_complex
from neural_arch.ops.elementwise import mul

DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _resize(a, axes, sizes):
    """Crop or zero-pad ``a`` along ``axes`` to ``sizes`` (the first elements are kept)."""
    out = a
    for ax, n in zip(axes, sizes):
        have = out.shape[ax]
        if have > n:
            out = np.take(out, np.arange(n), axis=ax)
        elif have < n:
            out = np.pad(out, [(0, n - have) if d == ax else (0, 0) for d in range(out.ndim)])
    return out


def _complex(a):
    return a.astype(np.complex64 if a.dtype in (np.float32, np.complex64, np.float16) else np.complex128, copy=False)


class FFTC2C(Function):
    """y = s W x over ``axes`` (``inverse``: the inverse DFT)     dL/dx = s W^H g: the other direction, dual norm"""

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, sizes, axes, norm, inverse):
        ctx.in_shape, ctx.axes, ctx.norm, ctx.inverse, ctx.in_dtype = x.shape, axes, norm, inverse, x.dtype
        fn = np.fft.ifftn if inverse else np.fft.fftn
        return _complex(fn(_complex(x), sizes, axes, norm=norm))

    @staticmethod
    def backward(ctx, grad):
        fn = np.fft.fftn if ctx.inverse else np.fft.ifftn
        g = fn(grad, axes=ctx.axes, norm=DUAL[ctx.norm])
        g = _resize(g, ctx.axes, [ctx.in_shape[a] for a in ctx.axes])
        return (g.real if ctx.in_dtype.kind != "c" else g).astype(ctx.in_dtype, copy=False)


class FFTR2C(Function):
    """y = the first n//2 + 1 outputs (last axis) of s W x for a real x
    dL/dx = Re(s W^H [g zero-padded to n on the last axis])"""

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, sizes, axes, norm):
        ctx.in_shape, ctx.axes, ctx.norm, ctx.sizes = x.shape, axes, norm, sizes
        return _complex(np.fft.rfftn(x, sizes, axes, norm=norm))

    @staticmethod
    def backward(ctx, grad):
        g = _resize(grad, ctx.axes[-1:], ctx.sizes[-1:])
        g = np.fft.ifftn(g, axes=ctx.axes, norm=DUAL[ctx.norm]).real
        return _resize(g, ctx.axes, [ctx.in_shape[a] for a in ctx.axes]).astype(grad.real.dtype, copy=False)


class FFTC2R(Function):
    """y = s W^{-1} x_full (real, size n on the last axis), x_full the Hermitian completion of the half-spectrum x
    dL/dx = s rfft(g) with the entries 1 .. n - (n//2 + 1) of the last axis doubled (each stands for two)"""

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, x, sizes, axes, norm):
        ctx.in_shape, ctx.axes, ctx.norm, ctx.sizes = x.shape, axes, norm, sizes
        return np.fft.irfftn(x, sizes, axes, norm=norm).astype(x.real.dtype)

    @staticmethod
    def backward(ctx, grad):
        g = np.fft.rfftn(grad, axes=ctx.axes, norm=DUAL[ctx.norm])
        n = ctx.sizes[-1]
        double = n - (n // 2 + 1)
        if double > 0:
            g[(slice(None),) * ctx.axes[-1] + (slice(1, 1 + double),)] *= 2
        in_sizes = [ctx.in_shape[a] for a in ctx.axes]
        return _resize(g, ctx.axes, in_sizes).astype(_complex(np.empty(0, grad.dtype)).dtype, copy=False)


def _check_norm(norm, op):
    norm = "backward" if norm is None else norm
    if norm not in DUAL:
        raise ValueError(f"{op}: norm must be 'backward', 'forward', 'ortho' or None, got {norm!r}")
    return norm


def _as_input(x: Tensor, op: str, real_only: bool = False) -> Tensor:
    kind = x.data.dtype.kind
    if real_only and kind == "c":
        raise DTypeError(f"{op}: expects a real input, got {x.dtype} (use the complex transform, e.g. fft)")
    return x.float() if kind in "biu" else x


def _axes_sizes(x: Tensor, s, dim, op: str, default_all: bool):
    """Normalised (axes, sizes); ``s`` alone names the last len(s) dims, as torch."""
    nd = x.data.ndim
    if dim is None:
        dims = list(range(nd - len(s), nd)) if s is not None else (list(range(nd)) if default_all else [nd - 1])
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
    axes = [normalize_dims(d, nd, op)[0] for d in dims]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: dims {dims} repeat a dim")
    if s is None:
        sizes = [x.data.shape[a] for a in axes]
    else:
        sizes = [int(v) if v != -1 else x.data.shape[a] for v, a in zip(s, axes)]
        if len(sizes) != len(axes):
            raise ShapeError(f"{op}: s={tuple(s)} and dim={dims} differ in length")
    if any(v < 1 for v in sizes):
        raise ShapeError(f"{op}: transform sizes must be positive, got {sizes} for input {shape_str(x.shape)}")
    return tuple(axes), tuple(sizes)


def c2c(x: Tensor, s, dim, norm, inverse: bool, op: str, default_all: bool) -> Tensor:
    """A complex-to-complex transform (``neural_arch.fft``)."""
    x = _as_input(x, op)
    axes, sizes = _axes_sizes(x, s, dim, op, default_all)
    return FFTC2C.apply(x, sizes=sizes, axes=axes, norm=_check_norm(norm, op), inverse=inverse)


def r2c(x: Tensor, s, dim, norm, op: str, default_all: bool) -> Tensor:
    """A real-to-complex transform, the non-negative frequencies of the last axis."""
    x = _as_input(x, op, real_only=True)
    axes, sizes = _axes_sizes(x, s, dim, op, default_all)
    return FFTR2C.apply(x, sizes=sizes, axes=axes, norm=_check_norm(norm, op))


def c2r(x: Tensor, s, dim, norm, op: str, default_all: bool) -> Tensor:
    """Output sizes: ``s``, else the input's along every axis but the last, 2 (m - 1) along the last."""
    (x,) = autocast_args(FP32, x)  # on torch's float32 list: a real input is cast before it is made complex
    x = _as_input(x, op)
    if x.data.dtype.kind != "c":
        x = make_complex(x, mul(x, 0))
    axes, sizes = _axes_sizes(x, s, dim, op, default_all)
    if s is None:
        sizes = sizes[:-1] + (2 * (x.data.shape[axes[-1]] - 1),)
    if sizes[-1] < 1:
        raise ShapeError(f"{op}: the output would be empty; give n (or s) for a one-element input")
    return FFTC2R.apply(x, sizes=sizes, axes=axes, norm=_check_norm(norm, op))
