"""Rearranging and resampling images: pixel_shuffle / pixel_unshuffle, channel_shuffle (exact
compositions of reshape and permute), affine_grid (a matmul with a fixed grid) and grid_sample (its
own Function), and torch's deprecated ``upsample*`` names over ``interpolate``.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import FP32
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops.interpolate import interpolate
from neural_arch.ops.linalg import matmul
from neural_arch.ops.shape import permute

__all__ = [
    "GRID_SAMPLE_INTERPOLATION_MODES", "GRID_SAMPLE_PADDING_MODES", "affine_grid",
    "channel_shuffle", "grid_sample", "native_channel_shuffle", "pixel_shuffle", "pixel_unshuffle",
    "upsample", "upsample_bilinear", "upsample_nearest",
]


# torch's tables of grid_sample's modes (the ones marked in the docstring are implemented here)
GRID_SAMPLE_INTERPOLATION_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
GRID_SAMPLE_PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """``(*, C r^2, H, W)`` -> ``(*, C, H r, W r)``: out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w]."""
    r = int(upscale_factor)
    *lead, C, H, W = input.shape
    if input.ndim < 3 or C % (r * r):
        raise ShapeError(f"pixel_shuffle: needs (*, C, H, W) with C divisible by upscale_factor^2 = {r * r}, "
                         f"got {shape_str(input.shape)}")
    k = len(lead)
    x = input.reshape(*lead, C // (r * r), r, r, H, W)
    x = permute(x, (*range(k), k, k + 3, k + 1, k + 4, k + 2))
    return x.reshape(*lead, C // (r * r), H * r, W * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of :func:`pixel_shuffle`: ``(*, C, H r, W r)`` -> ``(*, C r^2, H, W)``."""
    r = int(downscale_factor)
    *lead, C, H, W = input.shape
    if input.ndim < 3 or H % r or W % r:
        raise ShapeError(f"pixel_unshuffle: needs (*, C, H, W) with H and W divisible by downscale_factor = {r}, "
                         f"got {shape_str(input.shape)}")
    k = len(lead)
    x = input.reshape(*lead, C, H // r, r, W // r, r)
    x = permute(x, (*range(k), k, k + 2, k + 4, k + 1, k + 3))
    return x.reshape(*lead, C * r * r, H // r, W // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """``(N, C, *)`` with C = g k: channel g' k + k' moves to k' g + g' (ShuffleNet's shuffle)."""
    g = int(groups)
    if input.ndim < 3 or g <= 0 or input.shape[1] % g:
        raise ShapeError(f"channel_shuffle: needs (N, C, *) with C divisible by groups = {g}, "
                         f"got {shape_str(input.shape)}")
    N, C, *rest = input.shape
    x = input.reshape(N, g, C // g, *rest)
    x = permute(x, (0, 2, 1, *range(3, x.ndim)))
    return x.reshape(N, C, *rest)


native_channel_shuffle = channel_shuffle


def _base_coords(n: int, align_corners: bool, dtype) -> np.ndarray:
    """Normalised pixel-centre coordinates in [-1, 1] along an axis of n pixels."""
    if align_corners:
        return np.linspace(-1, 1, n, dtype=dtype) if n > 1 else np.zeros(1, dtype)
    return ((np.arange(n, dtype=dtype) * 2 + 1) / n - 1).astype(dtype)


def affine_grid(theta: Tensor, size, align_corners: bool = False) -> Tensor:
    """Sampling grid of an affine map: theta (N, 2, 3) with size (N, C, H, W) -> (N, H, W, 2), or theta
    (N, 3, 4) with size (N, C, D, H, W) -> (N, D, H, W, 3); grid = [x, y, (z,) 1] theta^T."""
    size = tuple(int(s) for s in size)
    spatial = size[2:]
    k = len(spatial)
    if k not in (2, 3) or tuple(theta.shape) != (size[0], k, k + 1):
        raise ShapeError(f"affine_grid: theta must be (N, {k}, {k + 1}) for size {size} (N, C, H, W or D, H, W), "
                         f"got {shape_str(theta.shape)}")
    dt = theta.data.dtype
    axes = [_base_coords(n, align_corners, dt) for n in spatial]  # (D,) H, W
    mesh = list(np.meshgrid(*axes, indexing="ij"))  # each (D,) H, W
    base = np.stack(mesh[::-1] + [np.ones_like(mesh[0])], -1).reshape(1, -1, k + 1)  # x first, then y (, z)
    grid = matmul(Tensor(base), theta.transpose(1, 2))  # (N, prod(spatial), k)
    return grid.reshape(size[0], *spatial, k)


class GridSample2d(Function):
    """Bilinear (or nearest) sampling of x (N, C, H, W) at grid (N, Ho, Wo, 2) = normalised (x, y):

        ix = unnormalise(gx)   (align_corners: (gx + 1)(W - 1)/2, else ((gx + 1) W - 1)/2; 'border': clipped)
        y = sum over the 4 corners (x0 + a, y0 + b) of x[.., y0 + b, x0 + a] wx_a wy_b   (0 outside, 'zeros')

        dL/dx[corner] += g wx_a wy_b
        dL/dgx = sum_c g (wy_0 (v01 - v00) + wy_1 (v11 - v10)) dix/dgx   (and alike for gy)

    'nearest' takes the nearest pixel (rounding half to even, as torch) and gives the grid no gradient.
    """

    half = "float32"
    autocast = FP32  # torch's CPU autocast list (grid_sampler)

    @staticmethod
    def forward(ctx, x, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
        N, C, H, W = x.shape
        ix, dix = _unnormalise(grid[..., 0], W, align_corners, padding_mode)
        iy, diy = _unnormalise(grid[..., 1], H, align_corners, padding_mode)
        ctx.params = (mode, x.shape)
        ctx.grid_shape = grid.shape
        if mode == "nearest":
            cx, cy = np.rint(ix).astype(np.int64), np.rint(iy).astype(np.int64)
            corners = [(cy, cx, np.ones_like(ix))]
        else:
            x0, y0 = np.floor(ix).astype(np.int64), np.floor(iy).astype(np.int64)
            wx1, wy1 = ix - x0, iy - y0
            wx0, wy0 = 1 - wx1, 1 - wy1
            corners = [(y0, x0, wy0 * wx0), (y0, x0 + 1, wy0 * wx1),
                       (y0 + 1, x0, wy1 * wx0), (y0 + 1, x0 + 1, wy1 * wx1)]
            ctx.weights = (wx0, wx1, wy0, wy1, dix, diy)
        out = np.zeros((N, C) + ix.shape[1:], x.dtype)
        batch = np.arange(N).reshape(N, 1, 1)
        values = []
        for cy, cx, w in corners:
            inside = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
            v = x[batch, :, np.clip(cy, 0, H - 1), np.clip(cx, 0, W - 1)]  # (N, Ho, Wo, C)
            v = np.moveaxis(v, -1, 1) * inside[:, None]
            values.append(v)
            out += v * w[:, None].astype(x.dtype)
        ctx.corners = [(cy, cx, w, (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)) for cy, cx, w in corners]
        ctx.values = values if mode == "bilinear" else None
        return out

    @staticmethod
    def backward(ctx, grad):
        mode, (N, C, H, W) = ctx.params
        dx = np.zeros((N, C, H, W), grad.dtype)
        flat = dx.reshape(N, C, H * W)
        for cy, cx, w, inside in ctx.corners:
            contrib = grad * (w * inside)[:, None].astype(grad.dtype)  # (N, C, Ho, Wo)
            index = (np.clip(cy, 0, H - 1) * W + np.clip(cx, 0, W - 1)).reshape(N, 1, -1)
            for n in range(N):
                np.add.at(flat[n], (slice(None), index[n, 0]), contrib[n].reshape(C, -1))
        if mode == "nearest":
            return dx, np.zeros(ctx.grid_shape, grad.dtype)  # piecewise constant in the grid
        wx0, wx1, wy0, wy1, dix, diy = ctx.weights
        v00, v01, v10, v11 = ctx.values
        gx = (grad * (wy0[:, None] * (v01 - v00) + wy1[:, None] * (v11 - v10))).sum(axis=1) * dix
        gy = (grad * (wx0[:, None] * (v10 - v00) + wx1[:, None] * (v11 - v01))).sum(axis=1) * diy
        return dx, np.stack([gx, gy], -1).astype(grad.dtype)


def _unnormalise(g, n, align_corners, padding_mode):
    """(pixel coordinate, its derivative by the normalised one)."""
    if align_corners:
        i, d = (g + 1) * ((n - 1) / 2), np.full(g.shape, (n - 1) / 2, g.dtype)
    else:
        i, d = ((g + 1) * n - 1) / 2, np.full(g.shape, n / 2, g.dtype)
    if padding_mode == "border":
        clipped = (i < 0) | (i > n - 1)
        i = np.clip(i, 0, n - 1)
        d = np.where(clipped, 0, d).astype(g.dtype)
    return i, d


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample a 4-d input at the normalised (x, y) locations of ``grid`` (N, Ho, Wo, 2): -1 is the left/top
    edge, +1 the right/bottom (pixel edges, or pixel centres with ``align_corners=True``).

    Modes 'bilinear' and 'nearest'; padding 'zeros' and 'border' ('reflection' and 'bicubic' and 5-d
    inputs are not implemented: a ConfigError says so).
    """
    if mode not in ("bilinear", "nearest"):
        raise ConfigError(f"grid_sample: mode must be 'bilinear' or 'nearest' ('bicubic' is not implemented), "
                          f"got {mode!r}")
    if padding_mode not in ("zeros", "border"):
        raise ConfigError(f"grid_sample: padding_mode must be 'zeros' or 'border' ('reflection' is not "
                          f"implemented), got {padding_mode!r}")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ShapeError(f"grid_sample: expected input (N, C, H, W) and grid (N, Ho, Wo, 2), got "
                         f"{shape_str(input.shape)} and {shape_str(grid.shape)}")
    return GridSample2d.apply(input, grid, mode=mode, padding_mode=padding_mode, align_corners=bool(align_corners))


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """Deprecated in torch: :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated in torch: ``interpolate(mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated in torch: ``interpolate(mode='bilinear', align_corners=True)``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
