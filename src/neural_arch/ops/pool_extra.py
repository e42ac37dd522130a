"""More pooling, as exact compositions of the 2-d pools: adaptive pools over (N, C, L), and power-average
(LP) pooling ``(sum over the window of x^p)^(1/p)``."""

from __future__ import annotations

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops.activation import relu
from neural_arch.ops.conv import ntuple
from neural_arch.ops.elementwise import abs as _abs
from neural_arch.ops.elementwise import pow as _pow
from neural_arch.ops.elementwise import sign
from neural_arch.ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d, avg_pool2d
from neural_arch.ops.shape import reshape

__all__ = ["adaptive_avg_pool1d", "adaptive_max_pool1d", "lp_pool1d", "lp_pool2d"]


def _as_image(input: Tensor, op: str):
    if input.ndim not in (2, 3):
        raise ShapeError(f"{op}: expected (N, C, L) or (C, L), got {shape_str(input.shape)}")
    return reshape(input, (*input.shape[:-1], 1, input.shape[-1]))


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling of ``(N, C, L)`` to ``output_size`` steps (torch's adaptive windows)."""
    y = adaptive_avg_pool2d(_as_image(input, "adaptive_avg_pool1d"), (1, ntuple(output_size, 1, "output_size",
                                                                                  "adaptive_avg_pool1d")[0]))
    return reshape(y, (*y.shape[:-2], y.shape[-1]))


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling of ``(N, C, L)`` to ``output_size`` steps; optionally with the indices along L."""
    out = adaptive_max_pool2d(_as_image(input, "adaptive_max_pool1d"),
                              (1, ntuple(output_size, 1, "output_size", "adaptive_max_pool1d")[0]), return_indices)
    y, idx = out if return_indices else (out, None)
    y = reshape(y, (*y.shape[:-2], y.shape[-1]))
    return (y, Tensor._wrap(idx.data.reshape(y.shape))) if return_indices else y


def _lp_finish(mean, norm_type, window):
    # torch: (sign(m) relu(|m|) * window)^(1/p); the sign/relu pair keeps the base >= 0 for odd p
    return _pow(sign(mean) * relu(_abs(mean)) * float(window), 1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size: int, stride=None, ceil_mode: bool = False) -> Tensor:
    """``(sum over each window of x^p)^(1/p)`` over ``(N, C, L)``."""
    k = ntuple(kernel_size, 1, "kernel_size", "lp_pool1d")[0]
    mean = avg_pool1d(_pow(input, norm_type), k, stride, 0, ceil_mode)
    return _lp_finish(mean, norm_type, k)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """``(sum over each window of x^p)^(1/p)`` over ``(N, C, H, W)``."""
    kh, kw = ntuple(kernel_size, 2, "kernel_size", "lp_pool2d")
    mean = avg_pool2d(_pow(input, norm_type), (kh, kw), stride, 0, ceil_mode)
    return _lp_finish(mean, norm_type, kh * kw)
