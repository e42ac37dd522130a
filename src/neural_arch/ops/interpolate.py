"""Resizing: ``interpolate`` with torch's 'nearest', 'nearest-exact', 'linear' and 'bilinear' modes.

Both kinds of resize are separable: each output row comes from one (nearest)
or two (linear) input rows, and likewise for columns. So every mode is a
gather along H and along W with per-axis source indices (and weights), in the
order torch computes them (along W, then H), and every backward is the
adjoint: a scatter-add along each axis. The source indices never decrease
along the output, so the scatter-add is an ``np.add.reduceat`` over runs of
equal indices: no Python loops, no ``np.add.at``.

Source index rules (torch's ``UpSample.h``), with ``scale = in/out``, or
``1/scale_factor`` when a scale factor is given (and not recomputed):

* nearest:        ``src = min(floor(dst * scale), in - 1)`` (in float32, like torch)
* nearest-exact:  ``src = min(floor((dst + 0.5) * scale), in - 1)``
* (bi)linear:     ``src = dst * (in-1)/(out-1)`` with ``align_corners``, else
  ``max(0, (dst + 0.5) * scale - 0.5)``; ``i0 = floor(src)``, ``i1 = min(i0 + 1, in - 1)``,
  weights ``1 - (src - i0)`` and ``src - i0``.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops._half import compute_dtype
from neural_arch.ops._operands import floating
from neural_arch.ops.shape import reshape

__all__ = ["interpolate"]


class NearestResize(Function):
    """y[n, c, h, w] = x[n, c, ih[h], iw[w]]        dL/dx[.., i, j] = sum over (h, w) with ih[h]=i, iw[w]=j of dL/dy"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, ih, iw):
        ctx.ih, ctx.iw, ctx.hw = ih, iw, x.shape[2:]
        return x[:, :, ih[:, None], iw]

    @staticmethod
    def backward(ctx, grad):
        g = _scatter_axis(grad, ctx.iw, ctx.hw[1], axis=3)
        return _scatter_axis(g, ctx.ih, ctx.hw[0], axis=2)


class LinearResize(Function):
    """t = a0_w x[.., i0_w] + a1_w x[.., i1_w]  (along W),  y = a0_h t[.., i0_h, :] + a1_h t[.., i1_h, :]  (along H)

    Backward: the adjoint of each step in reverse order: scatter-add a0 dL/dy to i0 and
    a1 dL/dy to i1 along H, then the same along W.
    """

    half = "float32"

    @staticmethod
    def forward(ctx, x, hmap, wmap):
        i0h, i1h, a0h, a1h = hmap
        i0w, i1w, a0w, a1w = wmap
        t = x[:, :, :, i0w] * a0w + x[:, :, :, i1w] * a1w
        ctx.hmap, ctx.wmap, ctx.hw = hmap, wmap, x.shape[2:]
        return t[:, :, i0h] * a0h[:, None] + t[:, :, i1h] * a1h[:, None]

    @staticmethod
    def backward(ctx, grad):
        (i0h, i1h, a0h, a1h), (i0w, i1w, a0w, a1w) = ctx.hmap, ctx.wmap
        h, w = ctx.hw
        gt = (_scatter_axis(grad * a0h[:, None], i0h, h, axis=2)
              + _scatter_axis(grad * a1h[:, None], i1h, h, axis=2))
        return _scatter_axis(gt * a0w, i0w, w, axis=3) + _scatter_axis(gt * a1w, i1w, w, axis=3)


def _scatter_axis(g, idx, n: int, axis: int):
    """out[.., i, ..] = sum of g[.., k, ..] over k with idx[k] == i (idx non-decreasing), along ``axis``."""
    if len(idx) == n and (idx == np.arange(n)).all():
        return g
    starts = np.flatnonzero(np.concatenate(([True], idx[1:] != idx[:-1])))
    sums = np.add.reduceat(g, starts, axis=axis) if len(starts) < len(idx) else g
    out = np.zeros(g.shape[:axis] + (n,) + g.shape[axis + 1:], dtype=g.dtype)
    out[(slice(None),) * axis + (idx[starts],)] = sums
    return out


# -- source indices ----------------------------------------------------------------------------------------
def _scale(n_in: int, n_out: int, scale_factor, dtype):
    """torch's compute_scales_value: 1/scale_factor if one was given, else in/out (in ``dtype``)."""
    if scale_factor is not None and scale_factor > 0:
        return dtype(1.0 / scale_factor)
    return dtype(n_in) / dtype(n_out)


def _nearest_index(n_in: int, n_out: int, scale_factor, exact: bool):
    dst = np.arange(n_out, dtype=np.float32)
    if not exact and n_out == n_in:
        return np.arange(n_out)
    if not exact and n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    scale = _scale(n_in, n_out, scale_factor, np.float32)
    src = np.floor((dst + np.float32(0.5)) * scale if exact else dst * scale)  # float32 math, as torch
    return np.minimum(src.astype(np.int64), n_in - 1)


def _linear_map(n_in: int, n_out: int, scale_factor, align_corners: bool, dtype):
    """(i0, i1, a0, a1) for one axis: y[o] = a0[o] x[i0[o]] + a1[o] x[i1[o]]."""
    if n_in == n_out:  # torch copies: same indices, weights (1, 0)
        i = np.arange(n_out)
        return i, i, np.ones(n_out, dtype), np.zeros(n_out, dtype)
    dt = np.dtype(dtype).type
    dst = np.arange(n_out).astype(dtype)
    if align_corners:
        scale = dt(n_in - 1) / dt(n_out - 1) if n_out > 1 else dt(0)
        src = scale * dst
    else:
        scale = _scale(n_in, n_out, scale_factor, dt)
        src = np.maximum(scale * (dst + dt(0.5)) - dt(0.5), dt(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    a1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (dt(1) - a1).astype(dtype), a1


# -- the functional API -----------------------------------------------------------------------------------
_MODES = {"nearest": None, "nearest-exact": None, "linear": 3, "bilinear": 4}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize ``(N, C, H, W)`` (or ``(N, C, L)``) to ``size`` or by ``scale_factor``, as torch's ``F.interpolate``.

    Modes: 'nearest' (torch's legacy rule ``floor(dst * in/out)``), 'nearest-exact',
    'linear' (3-d input), 'bilinear' (4-d input, ``align_corners`` as torch).
    Not supported here: 'bicubic', 'trilinear', 'area', 5-d inputs and ``antialias=True``.
    """
    op = "interpolate"
    if mode not in _MODES:
        raise ConfigError(f"{op}: mode must be one of {sorted(_MODES)}, got {mode!r} "
                          "('bicubic', 'trilinear' and 'area' are not implemented)")
    if antialias:
        raise ConfigError(f"{op}: antialias=True is not supported")
    nd = input.data.ndim
    if nd not in (3, 4) or (_MODES[mode] is not None and nd != _MODES[mode]):
        want = {"linear": "a 3-d (N, C, L)", "bilinear": "a 4-d (N, C, H, W)"}.get(mode, "a 3-d or 4-d")
        raise ShapeError(f"{op}: mode {mode!r} needs {want} input, got shape {shape_str(input.shape)}")
    floating(input, op)
    if align_corners is not None and mode in ("nearest", "nearest-exact"):
        raise ConfigError(f"{op}: align_corners can only be set with the interpolating modes "
                          f"('linear', 'bilinear'), not with mode={mode!r}")
    spatial = input.data.shape[2:]
    k = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ConfigError(f"{op}: give exactly one of size and scale_factor (got size={size!r}, "
                          f"scale_factor={scale_factor!r})")
    if size is not None:
        sizes = (size,) * k if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != k:
            raise ShapeError(f"{op}: size {size!r} must have {k} entries for input {shape_str(input.shape)}")
        scales = (None,) * k
    else:
        scales = (scale_factor,) * k if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        if len(scales) != k:
            raise ShapeError(f"{op}: scale_factor {scale_factor!r} must have {k} entries for input "
                             f"{shape_str(input.shape)}")
        sizes = tuple(math.floor(float(n) * float(s)) for n, s in zip(spatial, scales))
        if recompute_scale_factor:
            scales = (None,) * k
    if any(int(s) < 1 for s in sizes):
        raise ShapeError(f"{op}: output size {tuple(sizes)} must be >= 1 in every dim (input "
                         f"{shape_str(input.shape)})")
    sizes = tuple(int(s) for s in sizes)
    if k == 1:  # 1-d: a unit-height image; the unit height maps to itself (index 0, weight 1)
        spatial, sizes, scales = (1,) + spatial, (1,) + sizes, (None,) + scales
    if mode.startswith("nearest"):
        exact = mode == "nearest-exact"
        ih, iw = (_nearest_index(n, o, s, exact) for n, o, s in zip(spatial, sizes, scales))
        return _apply_4d(input, k, lambda x4: NearestResize.apply(x4, ih=ih, iw=iw))
    dtype = compute_dtype(input.data.dtype)
    hmap, wmap = (_linear_map(n, o, s, bool(align_corners), dtype) for n, o, s in zip(spatial, sizes, scales))
    return _apply_4d(input, k, lambda x4: LinearResize.apply(x4, hmap=hmap, wmap=wmap))


def _apply_4d(input: Tensor, k: int, fn) -> Tensor:
    if k == 2:
        return fn(input)
    n, c, length = input.data.shape
    y = fn(reshape(input, (n, c, 1, length)))
    return reshape(y, (n, c, y.data.shape[3]))
