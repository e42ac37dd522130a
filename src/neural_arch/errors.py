"""The exception hierarchy of neural-arch.

Every failure a user can cause raises one of these, with a message that names
the op, the shapes or values involved, and what to do about it. They subclass
the built-in exception a Python user would expect too (``ShapeError`` is a
``ValueError``, ``DTypeError`` a ``TypeError``), so ``except ValueError`` keeps
working for code written against NumPy or PyTorch.
"""

from __future__ import annotations


class NeuralArchError(Exception):
    """Base class of every error raised on purpose by neural-arch."""


class ShapeError(NeuralArchError, ValueError):
    """Shapes that do not fit together: broadcasting, matmul, reshape, cat, ..."""


class DTypeError(NeuralArchError, TypeError):
    """A dtype an op cannot take (e.g. grad of an integer tensor)."""


class DeviceError(NeuralArchError, RuntimeError):
    """An unknown or unavailable device, or tensors on different devices."""


class GradientError(NeuralArchError, RuntimeError):
    """Misuse of autograd: backward twice, backward of a non-scalar, ..."""


class NumericalError(NeuralArchError, FloatingPointError):
    """NaN or Inf produced where anomaly detection is on."""


class IndexingError(NeuralArchError, IndexError):
    """An index out of range or of the wrong kind."""


class ConfigError(NeuralArchError, ValueError):
    """An invalid configuration field (YAML/JSON config or hyperparameter)."""


class CheckpointError(NeuralArchError, OSError):
    """A checkpoint that is truncated, tampered with, or does not match."""


class DataError(NeuralArchError, ValueError):
    """A dataset that is missing, corrupt, or not what was asked for."""


class ExportError(NeuralArchError, RuntimeError):
    """A model that cannot be traced or exported (an op with no ONNX mapping, shape-dependent
    control flow across dynamic axes, ...). The message names the op and the module path."""


class DistributedError(NeuralArchError, RuntimeError):
    """A multi-process failure: a lost rank, a collective that timed out, no process group."""


class CompileError(NeuralArchError, RuntimeError):
    """``na.compile(..., fullgraph=True)`` met something it cannot capture (the message names it)."""


class MissingFeatureError(NeuralArchError, AttributeError):
    """A PyTorch name that neural-arch does not have, met in drop-in mode (``neural_arch.compat``).
    An AttributeError, so ``hasattr(torch, name)`` and ``getattr(torch, name, default)`` work."""


def shape_str(shape) -> str:
    """``(2, 3)`` -> ``'(2, 3)'``; the way shapes appear in every message."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"
