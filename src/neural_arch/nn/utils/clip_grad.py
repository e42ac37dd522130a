"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``, as in ``torch.nn.utils``.

Both work in place on ``p.grad`` with NumPy, outside the graph.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, NumericalError


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def _vector_norm(a, norm_type: float):
    """The p-norm of all entries of ``a``, in a's dtype (p = inf, 0, 1, 2 or any other float)."""
    a = np.abs(a)
    if norm_type == math.inf:
        return a.max() if a.size else a.dtype.type(0)
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return a.dtype.type(np.count_nonzero(a))
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return np.sqrt(np.vdot(a.ravel(), a.ravel()))  # vdot: one BLAS pass, no temporary
    return (a**norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """The p-norm of all the tensors together: the norm of their individual norms."""
    arrays = [t.data for t in ([tensors] if isinstance(tensors, Tensor) else tensors)]
    norm_type = float(norm_type)
    if not arrays:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    norms = np.stack([np.asarray(_vector_norm(a, norm_type)) for a in arrays])
    total = np.asarray(_vector_norm(norms, norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise NumericalError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({float(total)}), so it cannot "
            "be clipped. Pass error_if_nonfinite=False to clip_grad_norm_ to skip this check"
        )
    return Tensor._wrap(total)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so that their joint p-norm is at most ``max_norm``.

    ``total = ||(||g_1||_p, ..., ||g_n||_p)||_p``; each ``g *= min(max_norm / (total + 1e-6), 1)``.
    Returns ``total`` (before clipping) as a 0-d tensor. ``norm_type`` may be ``inf``
    (the largest absolute entry). ``foreach`` is accepted for torch compatibility and ignored.
    """
    grads = _grads(parameters)
    if not grads:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    total = get_total_norm([Tensor._wrap(g) for g in grads], norm_type, error_if_nonfinite)
    # in the norm's dtype, as torch does (Python floats do not widen a float32 array)
    coef = np.minimum(float(max_norm) / (total.data + 1e-6), 1.0)
    for g in grads:
        g *= coef.astype(g.dtype)  # in place, keeps float32 float32
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients by ``min(max_norm / (total_norm + 1e-6), 1)``, ``total_norm`` computed
    beforehand (e.g. by ``get_total_norm``): ``clip_grad_norm_`` in two steps."""
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coef = np.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for g in _grads(parameters):
        g *= coef.astype(g.dtype)


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The old name of ``clip_grad_norm_`` (deprecated in torch); the same function."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ConfigError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (a copy)."""
    return Tensor._wrap(np.concatenate([p.data.ravel() for p in parameters]))


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters (the inverse of ``parameters_to_vector``)."""
    data = vec.data if isinstance(vec, Tensor) else np.asarray(vec)
    offset = 0
    for p in parameters:
        n = p.data.size
        p.data[...] = data[offset:offset + n].reshape(p.shape)
        offset += n
