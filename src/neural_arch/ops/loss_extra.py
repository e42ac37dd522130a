"""More losses and distances, each an exact composition of existing ops (torch's own formulas):
margin ranking, hinge embedding, soft margin, multilabel soft margin, cosine embedding, triplet margin
(also with a distance function), multi margin, multilabel margin, Poisson and Gaussian NLL;
pairwise_distance and pdist. ``ctc_loss`` has its own Function (``ops/ctc.py``).

``reduction`` is ``'none'``, ``'mean'`` or ``'sum'`` (and torch's legacy ``size_average`` /
``reduce`` flags), as in ``ops/loss.py``.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops import reduce as _r
from neural_arch.ops._operands import array_of
from neural_arch.ops.activation import logsigmoid, relu, softplus
from neural_arch.ops.elementwise import exp, log, minimum, sqrt, where
from neural_arch.ops.linear import linear
from neural_arch.ops.loss import _ClampMinPassGrad, _reduce, _reduction, cross_entropy

__all__ = [
    "cosine_embedding_loss", "gaussian_nll_loss", "hinge_embedding_loss", "linear_cross_entropy", "margin_ranking_loss",
    "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss", "pairwise_distance", "pdist",
    "poisson_nll_loss", "soft_margin_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
]


def _same_shape(op, **tensors):
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ShapeError(f"{op}: expected inputs of one shape, got " +
                         ", ".join(f"{k} {shape_str(s)}" for k, s in shapes.items()))


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last dim (torch adds eps to the difference, not the norm)."""
    return _r.norm(x1 - x2 + eps, p, -1, keepdim)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between the rows of an (N, M) input, for i < j in row-major order: (N (N - 1) / 2,)."""
    if input.ndim != 2:
        raise ShapeError(f"pdist: expected a 2-d input (N, M), got {shape_str(input.shape)}")
    i, j = np.triu_indices(input.shape[0], 1)
    return _r.norm(input[i] - input[j], p, 1)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``, y in {1, -1}."""
    reduction = _reduction(reduction, size_average, reduce, "margin_ranking_loss")
    _same_shape("margin_ranking_loss", input1=input1, input2=input2, target=target)
    return _reduce(relu(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """``x`` where y = 1, ``max(0, margin - x)`` where y = -1 (torch's spelling: both terms where y is neither)."""
    reduction = _reduction(reduction, size_average, reduce, "hinge_embedding_loss")
    y = array_of(target)
    loss = where(y != 1, relu(margin - input), 0.0) + where(y != -1, input, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-y x))``."""
    reduction = _reduction(reduction, size_average, reduce, "soft_margin_loss")
    return _reduce(softplus(-target * input), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """``-mean_c [y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)] (times weight_c)`` per sample."""
    reduction = _reduction(reduction, size_average, reduce, "multilabel_soft_margin_loss")
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = _r.sum(loss, -1) / input.shape[-1]
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where y = 1, ``max(0, cos(x1, x2) - margin)`` where y = -1 (cos over the last dim,
    each squared norm + 1e-12, as torch)."""
    reduction = _reduction(reduction, size_average, reduce, "cosine_embedding_loss")
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise ShapeError(f"cosine_embedding_loss: expected two 1-d or 2-d inputs of one shape, got "
                         f"{shape_str(input1.shape)} and {shape_str(input2.shape)}")
    dim = input1.ndim - 1
    dot = _r.sum(input1 * input2, dim)
    mag = sqrt((_r.sum(input1 * input1, dim) + 1e-12) * (_r.sum(input2 * input2, dim) + 1e-12))
    cos = dot / mag
    y = array_of(target)
    loss = where(y == 1, 1 - cos, 0.0) + where(y == -1, relu(cos - margin), 0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))``, d = pairwise_distance (``swap``: d(a, n) = min(d(a, n), d(p, n)))."""
    reduction = _reduction(reduction, size_average, reduce, "triplet_margin_loss")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce(relu(margin + d_ap - d_an), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """:func:`triplet_margin_loss` with any ``distance_function(x1, x2)`` (default: pairwise_distance)."""
    reduction = _reduction(reduction, op="triplet_margin_with_distance_loss")
    if margin <= 0:
        raise ConfigError(f"triplet_margin_with_distance_loss: margin must be > 0, got {margin}")
    d = distance_function or pairwise_distance
    d_ap, d_an = d(anchor, positive), d(anchor, negative)
    if swap:
        d_an = minimum(d_an, d(positive, negative))
    return _reduce(relu(margin + d_ap - d_an), reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """Per sample: ``sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C`` (p = 1 or 2)."""
    reduction = _reduction(reduction, size_average, reduce, "multi_margin_loss")
    if p not in (1, 2):
        raise ConfigError(f"multi_margin_loss: only p = 1 and p = 2 are supported, got {p}")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    y = array_of(target).reshape(-1).astype(np.int64)
    N, C = x.shape
    rows = np.arange(N)
    z = relu(margin - x[rows, y].reshape(N, 1) + x)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight[y].reshape(N, 1)
    others = np.ones((N, C), bool)
    others[rows, y] = False
    loss = _r.sum(where(others, z, 0.0), 1) / C
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Per sample: ``sum_{j in targets, i not in targets} max(0, 1 - (x_j - x_i)) / C``; the targets are the
    class indices in ``target`` before its first -1."""
    reduction = _reduction(reduction, size_average, reduce, "multilabel_margin_loss")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    y = array_of(target).reshape(x.shape).astype(np.int64)
    N, C = x.shape
    is_target = np.zeros((N, C), bool)
    for n in range(N):
        for c in y[n]:
            if c < 0:
                break
            is_target[n, c] = True
    pairs = is_target[:, :, None] & ~is_target[:, None, :]  # (N, j, i)
    z = relu(1 - x.reshape(N, C, 1) + x.reshape(N, 1, C))
    loss = _r.sum(where(pairs, z, 0.0), (1, 2)) / C
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """``exp(x) - y x`` (``log_input``) or ``x - y log(x + eps)``; ``full`` adds Stirling's term
    ``y log y - y + log(2 pi y) / 2`` where y > 1."""
    reduction = _reduction(reduction, size_average, reduce, "poisson_nll_loss")
    loss = exp(input) - target * input if log_input else input - target * log(input + eps)
    if full:
        y = array_of(target)
        safe = np.where(y > 1, y, 1.0)
        stirling = np.where(y > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * math.pi * safe), 0.0)
        loss = loss + Tensor(stirling.astype(loss.data.dtype))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """``(log(max(var, eps)) + (x - y)^2 / max(var, eps)) / 2`` (+ log(2 pi) / 2 with ``full``). As torch, the
    clamp passes the gradient through unchanged. ``var`` has the input's shape, or one dim fewer, or a last dim of 1."""
    reduction = _reduction(reduction, op="gaussian_nll_loss")
    if not isinstance(var, Tensor):
        var = Tensor(np.full(input.shape[:-1] + (1,), float(var), input.data.dtype))
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.reshape(*var.shape, 1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ShapeError(f"gaussian_nll_loss: var {shape_str(var.shape)} does not fit input "
                             f"{shape_str(input.shape)}")
    if np.any(var.data < 0):
        raise ConfigError("gaussian_nll_loss: var has negative entries")
    v = _ClampMinPassGrad.apply(var, lo=eps)
    diff = input - target
    loss = 0.5 * (log(v) + diff * diff / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction: str = "mean",
                         ignore_index: int | None = None, label_smoothing: float = 0.0, options=None) -> Tensor:
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)`` (torch's reference path).

    ``options`` (torch's chunking options, a memory optimisation) is accepted and the reference path runs;
    a K-dimensional ``linear_weight`` (C, d1, ..., in) is not supported (ConfigError).
    """
    if linear_weight.ndim != 2:
        raise ConfigError(f"linear_cross_entropy: linear_weight must be 2-d (num_classes, in_features), got "
                          f"{shape_str(linear_weight.shape)} (K-dimensional outputs are not implemented)")
    logits = linear(input, linear_weight, linear_bias)
    return cross_entropy(logits, target, weight, ignore_index=-100 if ignore_index is None else ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)
