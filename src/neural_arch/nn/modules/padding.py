"""Padding layers, torch's names: ``ConstantPad{1,2,3}d``, ``ZeroPad{1,2,3}d``, ``ReflectionPad{1,2,3}d``,
``ReplicationPad{1,2,3}d``, ``CircularPad{1,2,3}d``, each over ``F.pad``.

``padding``: an int (every side) or a tuple ``(left, right[, top, bottom[, front, back]])``.
"""

from __future__ import annotations

from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module

__all__ = [f"{kind}Pad{n}d" for kind in ("Constant", "Zero", "Reflection", "Replication", "Circular")
           for n in (1, 2, 3)]


class _PadNd(Module):
    _nd = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        n = 2 * self._nd
        self.padding = (int(padding),) * n if isinstance(padding, int) else tuple(int(p) for p in padding)
        if len(self.padding) != n:
            raise ConfigError(f"{type(self).__name__}: padding must be an int or {n} ints, got {padding}")
        self.value = value

    def forward(self, input):
        if input.ndim not in (self._nd + 1, self._nd + 2):
            raise ShapeError(f"{type(self).__name__}: expected a {self._nd + 1}-d or {self._nd + 2}-d input, got "
                             f"{shape_str(input.shape)}")
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if self._mode == "constant" else "")


def _make(kind: str, mode: str, nd: int):
    if kind == "Constant":
        def __init__(self, padding, value: float):
            _PadNd.__init__(self, padding, value)
        doc = f"Pads the last {nd} dims with the constant ``value``."
    elif kind == "Zero":
        def __init__(self, padding):
            _PadNd.__init__(self, padding, 0.0)
        doc = f"Pads the last {nd} dims with zeros."
    else:
        def __init__(self, padding):
            _PadNd.__init__(self, padding)
        doc = f"Pads the last {nd} dims by {mode} padding (as ``F.pad(mode={mode!r})``)."
    name = f"{kind}Pad{nd}d"
    return type(name, (_PadNd,), {"__init__": __init__, "_nd": nd, "_mode": mode, "__doc__": doc,
                                  "__module__": __name__, "__qualname__": name})


_MODES = {"Constant": "constant", "Zero": "constant", "Reflection": "reflect", "Replication": "replicate",
          "Circular": "circular"}
for _kind, _mode in _MODES.items():
    for _nd in (1, 2, 3):
        globals()[f"{_kind}Pad{_nd}d"] = _make(_kind, _mode, _nd)
