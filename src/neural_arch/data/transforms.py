"""Image transforms, like ``torchvision.transforms``: small callables composed into a pipeline.

A transform takes one image and returns one image::

    train_tf = Compose([
        ToTensor(),                          # uint8 (H, W[, C]) -> float32 (C, H, W) in [0, 1]
        RandomCrop(28, padding=4),           # pad, then cut a random 28x28 window
        RandomHorizontalFlip(),              # mirror left-right with probability 0.5
        Normalize((0.2860,), (0.3530,)),     # (x - mean) / std per channel
    ])
    train = FashionMNIST(root, train=True, transform=train_tf)

Images are NumPy arrays or ``na.Tensor``s; each transform returns the same
kind it was given (``ToTensor`` always returns a Tensor). Channel-first
layout ``(C, H, W)`` (or ``(H, W)``) as in torch. Transforms work on the raw
arrays, outside autograd: they prepare data, they are not part of a model.

Every random transform draws from a ``generator=`` (an ``na.Generator``), or
from the default generator that ``na.manual_seed`` seeds, so a seeded run
sees the same augmentations every time.

Batched inputs: ``RandomCrop`` and ``RandomHorizontalFlip`` also take a
batch ``(N, C, H, W)`` when built with ``batched=True``, and then draw a crop
or flip *per image* in one vectorised step (useful on a whole mini-batch,
where a per-sample Python call would dominate).
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import get_generator
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str

__all__ = ["Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Lambda"]


def _unwrap(img, op: str):
    """(array, was_tensor): transforms work on the raw array and re-wrap at the end."""
    if isinstance(img, Tensor):
        return img.data, True
    if isinstance(img, np.ndarray):
        return img, False
    raise DTypeError(f"{op}: expected a NumPy array or an na.Tensor image, got {type(img).__name__}")


def _wrap(arr, was_tensor: bool):
    return Tensor(arr) if was_tensor else arr


def _pair(size, op: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ConfigError(f"{op}: size must be a positive int or (height, width), got {size}")
    return size


class Compose:
    """Apply transforms one after another: ``Compose([t1, t2])(x) == t2(t1(x))``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ConfigError(f"Compose: every transform must be callable, got {type(t).__name__}")

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class Lambda:
    """Wrap any function of one image as a transform."""

    def __init__(self, fn):
        if not callable(fn):
            raise ConfigError(f"Lambda: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, img):
        return self.fn(img)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self.fn, '__name__', self.fn)!r})"


class ToTensor:
    """An image array ``(H, W)`` or ``(H, W, C)`` -> float32 Tensor ``(C, H, W)``.

    uint8 pixels are scaled to [0, 1] (divided by 255), as torchvision does;
    floating arrays keep their values. A 2-D image gets one channel.
    Differs from torchvision: input is a NumPy array (no PIL here); an
    ``na.Tensor`` is taken to be channel-first already and only cast.
    """

    def __call__(self, img) -> Tensor:
        if isinstance(img, Tensor):
            return Tensor(img.data.astype(np.float32, copy=False))
        arr, _ = _unwrap(img, "ToTensor")
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3:
            arr = arr.transpose(2, 0, 1)  # HWC -> CHW
        else:
            raise ShapeError(f"ToTensor: expected an image of shape (H, W) or (H, W, C), got {shape_str(arr.shape)}")
        if arr.dtype == np.uint8:
            return Tensor(arr.astype(np.float32) / np.float32(255.0))
        if arr.dtype.kind not in "fiu":
            raise DTypeError(f"ToTensor: cannot convert an image of dtype {arr.dtype}; give uint8 or float pixels")
        return Tensor(np.ascontiguousarray(arr, dtype=np.float32))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``out[c] = (img[c] - mean[c]) / std[c]`` over the channel dimension ``-3``.

    ``mean`` and ``std`` are sequences with one value per channel (or one
    value for all channels).
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ConfigError(f"Normalize: mean has {self.mean.size} values but std has {self.std.size}")
        if np.any(self.std == 0):
            raise ConfigError(f"Normalize: std must be non-zero, got {self.std.tolist()}")

    def __call__(self, img):
        arr, was_tensor = _unwrap(img, "Normalize")
        if arr.dtype.kind != "f":
            raise DTypeError(f"Normalize: expected a floating image (apply ToTensor first), got {arr.dtype}")
        channels = arr.shape[-3] if arr.ndim >= 3 else 1
        if self.mean.size not in (1, channels):
            raise ShapeError(
                f"Normalize: {self.mean.size} mean/std values for an image of shape {shape_str(arr.shape)} "
                f"with {channels} channels; give one value per channel"
            )
        shape = (-1, 1, 1) if arr.ndim >= 3 else (-1, 1)
        mean = self.mean.astype(arr.dtype).reshape(shape)
        std = self.std.astype(arr.dtype).reshape(shape)
        return _wrap((arr - mean) / std, was_tensor)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Pad by ``padding`` pixels on every side, then cut a ``size`` window at a random place.

    Args:
        size: output (height, width), or one int for a square.
        padding: pixels added on each side before cropping (int, or (left/right, top/bottom)
            as torchvision's two-value form).
        fill: the value of padded pixels when ``padding_mode="constant"``.
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"`` (np.pad's modes).
        batched: the input is a batch ``(N, ..., H, W)``; draw one crop per image.
        generator: an ``na.Generator``; the default generator otherwise.
    """

    _MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size, padding=0, fill=0.0, padding_mode: str = "constant", batched: bool = False,
                 generator=None):
        self.size = _pair(size, "RandomCrop")
        if isinstance(padding, int):
            padding = (padding, padding)
        padding = tuple(int(p) for p in padding)
        if len(padding) != 2 or min(padding) < 0:
            raise ConfigError(f"RandomCrop: padding must be a non-negative int or (pad_w, pad_h), got {padding}")
        self.pad_w, self.pad_h = padding
        if padding_mode not in self._MODES:
            raise ConfigError(f"RandomCrop: padding_mode must be one of {self._MODES}, got {padding_mode!r}")
        self.fill = fill
        self.padding_mode = padding_mode
        self.batched = batched
        self.generator = generator

    def _pad(self, arr):
        if self.pad_h == 0 and self.pad_w == 0:
            return arr
        widths = [(0, 0)] * (arr.ndim - 2) + [(self.pad_h, self.pad_h), (self.pad_w, self.pad_w)]
        if self.padding_mode == "constant":
            return np.pad(arr, widths, mode="constant", constant_values=self.fill)
        return np.pad(arr, widths, mode=self.padding_mode)

    def __call__(self, img):
        arr, was_tensor = _unwrap(img, "RandomCrop")
        min_ndim = 3 if self.batched else 2
        if arr.ndim < min_ndim:
            what = "(N, ..., H, W)" if self.batched else "(..., H, W)"
            raise ShapeError(f"RandomCrop: expected an image of shape {what}, got {shape_str(arr.shape)}")
        padded = self._pad(arr)
        th, tw = self.size
        h, w = padded.shape[-2:]
        if th > h or tw > w:
            raise ShapeError(
                f"RandomCrop: crop size ({th}, {tw}) is larger than the padded image ({h}, {w}); "
                f"lower size or raise padding"
            )
        rng = get_generator(self.generator)
        if not self.batched:
            top = int(rng.integers(0, h - th + 1))
            left = int(rng.integers(0, w - tw + 1))
            return _wrap(np.ascontiguousarray(padded[..., top:top + th, left:left + tw]), was_tensor)
        # One window per image, gathered in one fancy-indexing step:
        # rows[n, i] = top[n] + i, cols[n, j] = left[n] + j.
        n = padded.shape[0]
        top = rng.integers(0, h - th + 1, size=n)
        left = rng.integers(0, w - tw + 1, size=n)
        rows = top[:, None] + np.arange(th)  # (N, th)
        cols = left[:, None] + np.arange(tw)  # (N, tw)
        moved = np.moveaxis(padded, (-2, -1), (1, 2))  # (N, H, W, ...)
        out = moved[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (N, th, tw, ...)
        return _wrap(np.ascontiguousarray(np.moveaxis(out, (1, 2), (-2, -1))), was_tensor)

    def __repr__(self) -> str:
        return (f"RandomCrop(size={self.size}, padding=({self.pad_w}, {self.pad_h}), "
                f"padding_mode={self.padding_mode!r}, batched={self.batched})")


class RandomHorizontalFlip:
    """Mirror the image left-right (last dimension) with probability ``p``.

    With ``batched=True`` the input is ``(N, ..., H, W)`` and each image is
    flipped or not on its own draw.
    """

    def __init__(self, p: float = 0.5, batched: bool = False, generator=None):
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.batched = batched
        self.generator = generator

    def __call__(self, img):
        arr, was_tensor = _unwrap(img, "RandomHorizontalFlip")
        if arr.ndim < (3 if self.batched else 1):
            raise ShapeError(f"RandomHorizontalFlip: expected an image with a width dimension, got "
                             f"{shape_str(arr.shape)}")
        rng = get_generator(self.generator)
        if not self.batched:
            if rng.random() < self.p:
                return _wrap(np.ascontiguousarray(arr[..., ::-1]), was_tensor)
            return img
        flip = rng.random(arr.shape[0]) < self.p
        out = arr.copy()
        out[flip] = arr[flip][..., ::-1]
        return _wrap(out, was_tensor)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p}, batched={self.batched})"

