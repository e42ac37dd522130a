"""Devices and their array namespaces: NumPy on ``cpu``, CuPy on ``cuda``.

The op code is written once against an array namespace ``xp`` (Chainer's
idea): ``xp = array_namespace(x)`` gives ``numpy`` or ``cupy``. Most NumPy
functions also accept CuPy arrays through ``__array_function__``, so plain
``np.exp(x)`` works on both; ``xp`` is needed where a function must allocate.
"""

from __future__ import annotations

import numpy as np

from neural_arch.errors import DeviceError

_cupy = None  # imported lazily: importing CuPy costs ~1 s even where there is no GPU
_cupy_checked = False


def _import_cupy():
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy  # noqa: PLC0415

            cupy.cuda.runtime.getDeviceCount()  # raises when no driver/GPU is present
            _cupy = cupy
        except Exception:  # noqa: BLE001 - ImportError, CUDARuntimeError, ...: all mean "no CUDA"
            _cupy = None
    return _cupy


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return _import_cupy() is not None


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")``, ``Device("cuda:1")``.

    Compares equal to its string form, so ``t.device == "cpu"`` works.
    """

    __slots__ = ("type", "index")

    def __init__(self, spec: str | Device = "cpu", index: int | None = None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise DeviceError(f"device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise DeviceError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if idx:
            if not idx.isdigit():
                raise DeviceError(f"bad device index in {spec!r}: expected 'cuda:N' with N >= 0")
            index = int(idx)
        if kind == "cpu" and index not in (None, 0):
            raise DeviceError(f"the cpu device has no index {index}")
        self.type = kind
        self.index = index if kind == "cuda" else None

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except DeviceError:
                return False
        if not isinstance(other, Device):
            return NotImplemented
        if self.type != other.type:
            return False
        # 'cuda' (no index) means the current device; treat it as equal to any cuda index
        return self.index is None or other.index is None or self.index == other.index

    def __hash__(self) -> int:
        return hash(self.type)


CPU = Device("cpu")


def namespace_for(device: str | Device):
    """The array module (``numpy`` or ``cupy``) that holds arrays of ``device``."""
    dev = device if isinstance(device, Device) else Device(device)
    if dev.type == "cpu":
        return np
    cupy = _import_cupy()
    if cupy is None:
        raise DeviceError(
            f"device {str(dev)!r} needs CuPy and a CUDA GPU, and none is usable here. "
            "Install the CuPy build for your CUDA version (e.g. `pip install cupy-cuda12x`) "
            "or use device='cpu'."
        )
    return cupy


def array_namespace(x):
    """``numpy`` for NumPy arrays (and scalars), ``cupy`` for CuPy arrays."""
    if type(x) is np.ndarray:
        return np
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def device_of(x) -> Device:
    """The device an array lives on."""
    if type(x) is np.ndarray or _cupy is None or not isinstance(x, _cupy.ndarray):
        return CPU
    return Device("cuda", x.device.id)


def to_device(x, device: str | Device):
    """Copy ``x`` onto ``device`` (no copy when it is already there)."""
    dev = device if isinstance(device, Device) else Device(device)
    if dev.type == "cpu":
        return to_numpy(x)
    cupy = namespace_for(dev)
    with cupy.cuda.Device(dev.index or 0):
        return cupy.asarray(x)


def to_numpy(x) -> np.ndarray:
    """A NumPy array for ``x`` wherever it lives."""
    if type(x) is np.ndarray:
        return x
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)
