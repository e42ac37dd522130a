"""Activations as modules: each holds its options and calls the ``F`` function of the same name."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.module import Module


class _Inplace(Module):
    """An activation whose only option is ``inplace``: ``forward`` calls the class's ``_function``."""

    _function = None

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return self._function(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """max(0, x)"""

    _function = staticmethod(F.relu)


class ReLU6(_Inplace):
    """min(max(0, x), 6)"""

    _function = staticmethod(F.relu6)


class SiLU(_Inplace):
    """x * sigmoid(x)"""

    _function = staticmethod(F.silu)


class Mish(_Inplace):
    """x * tanh(softplus(x))"""

    _function = staticmethod(F.mish)


class Hardswish(_Inplace):
    """x * relu6(x + 3) / 6"""

    _function = staticmethod(F.hardswish)


class Hardsigmoid(_Inplace):
    """relu6(x + 3) / 6"""

    _function = staticmethod(F.hardsigmoid)


class SELU(_Inplace):
    """scale * elu(x, alpha) with the self-normalising constants."""

    _function = staticmethod(F.selu)


class Tanh(Module):
    """``F.tanh`` as a module."""
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    """``F.sigmoid`` as a module: 1 / (1 + e^-x)."""
    def forward(self, input):
        return F.sigmoid(input)


class LogSigmoid(Module):
    """``F.logsigmoid`` as a module: log(sigmoid(x)), computed stably."""
    def forward(self, input):
        return F.logsigmoid(input)


class GELU(Module):
    """x * Phi(x); ``approximate="tanh"`` uses the tanh approximation."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """``F.leaky_relu`` as a module: x if x > 0 else negative_slope x."""
    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """``F.elu`` as a module: x if x > 0 else alpha (e^x - 1)."""
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """``F.celu`` as a module: x if x > 0 else alpha (e^(x/alpha) - 1)."""
    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear above ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """``F.hardtanh`` as a module: x clipped to [min_val, max_val]."""
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class GLU(Module):
    """a * sigmoid(b), where a and b are the two halves of the input along ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    """``F.softmax`` as a module, along ``dim``."""
    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``F.log_softmax`` as a module, along ``dim``."""
    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Softmin(Softmax):
    """``F.softmin`` as a module: softmax(-x) along ``dim``."""
    def forward(self, input):
        return F.softmin(input, self.dim)
