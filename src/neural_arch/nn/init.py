"""``nn.init``: fill a tensor in place with numbers from a distribution, as ``torch.nn.init``.

Every function writes into ``tensor.data`` (no graph is recorded), returns
the tensor, and draws from ``generator`` (default: na's seeded default
generator, so ``na.manual_seed`` makes initialisation reproducible). The
draws are NumPy's, so the *numbers* differ from torch's for the same seed;
the distributions are the same.

Fans, for a weight of shape ``(out, in, *kernel)``:
``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.backend.random import get_generator
from neural_arch.errors import ConfigError, ShapeError, shape_str

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
    "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
]


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The gain that keeps activations' variance stable through ``nonlinearity`` (torch's table):
    linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ConfigError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ConfigError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ShapeError(
            f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
            f"(shape {shape_str(tensor.shape)})"
        )
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Write float64 draws into the tensor's array, cast to its dtype (and device)."""
    data = tensor.data
    if isinstance(data, np.ndarray):
        data[...] = values
    else:  # a CuPy array: copy over
        import cupy  # noqa: PLC0415

        data[...] = cupy.asarray(values)
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """U(a, b)."""
    return _fill(tensor, get_generator(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """N(mean, std^2)."""
    return _fill(tensor, get_generator(generator).normal(mean, std, tensor.shape))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """N(mean, std^2) restricted to [a, b] (a and b are absolute bounds, as in torch).

    NOTE: torch samples by inverting the CDF; we redraw the values that fall outside
    [a, b] until none do, which gives the same distribution without needing erfinv."""
    if not a < b:
        raise ConfigError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    g = get_generator(generator)
    values = g.normal(mean, std, tensor.shape)
    bad = (values < a) | (values > b)
    for _ in range(1000):
        n = int(bad.sum())
        if n == 0:
            break
        values[bad] = g.normal(mean, std, n)
        bad = (values < a) | (values > b)
    else:
        raise ConfigError(f"trunc_normal_: [a, b] = [{a}, {b}] holds almost no mass of N({mean}, {std}^2)")
    return _fill(tensor, values)


def constant_(tensor, val: float):
    """Fill ``tensor`` with ``val`` in place (no gradient recorded); returns it."""
    tensor.data[...] = val
    return tensor


def ones_(tensor):
    """Fill ``tensor`` with ones in place; returns it."""
    return constant_(tensor, 1.0)


def zeros_(tensor):
    """Fill ``tensor`` with zeros in place; returns it."""
    return constant_(tensor, 0.0)


def eye_(tensor):
    """The identity matrix (2-D tensors only)."""
    if tensor.ndim != 2:
        raise ShapeError(f"eye_: only 2-D tensors are supported, got shape {shape_str(tensor.shape)}")
    return _fill(tensor, np.eye(*tensor.shape))


def dirac_(tensor, groups: int = 1):
    """The Dirac delta for 3-5-D conv weights: the conv passes its input channels through."""
    if tensor.ndim not in (3, 4, 5):
        raise ShapeError(f"dirac_: only 3-5-D tensors are supported, got shape {shape_str(tensor.shape)}")
    out_per_group = tensor.shape[0] // groups
    min_dim = min(out_per_group, tensor.shape[1])
    values = np.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(min_dim):
            values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, values)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-r, r) with r = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """U(-r, r) with r = gain * sqrt(3 / fan) (He et al., 2015); gain from ``calculate_gain(nonlinearity, a)``."""
    if 0 in tensor.shape:
        return tensor  # torch warns and does nothing for zero-element tensors
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """N(0, std^2) with std = gain / sqrt(fan)."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """A (semi-)orthogonal matrix (Saxe et al., 2013): the Q of a QR of a Gaussian matrix,
    signs fixed so the draw is uniform over orthogonal matrices; dims after the first are flattened."""
    if tensor.ndim < 2:
        raise ShapeError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got "
                         f"{shape_str(tensor.shape)}")
    if tensor.data.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.data.size // rows
    flat = get_generator(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def uniform_fan_in_bias_(bias, fan_in: int):
    """torch's default bias init for Linear and Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (0 when fan_in is 0)."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return uniform_(bias, -bound, bound)
