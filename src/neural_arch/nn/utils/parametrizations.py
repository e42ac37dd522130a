"""``nn.utils.parametrizations``: ``weight_norm`` and ``spectral_norm`` as parametrizations, as
``torch.nn.utils.parametrizations`` (same state-dict keys: ``parametrizations.weight.original0``
(g) and ``original1`` (v) for weight norm; ``parametrizations.weight.original`` and the buffers
``parametrizations.weight.0._u`` / ``_v`` for spectral norm)."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import default_generator
from neural_arch.errors import ConfigError
from neural_arch.nn.modules.module import Module
from neural_arch.nn.utils import parametrize

__all__ = ["spectral_norm", "weight_norm"]


def norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """The 2-norm of ``v`` over every dimension but ``dim`` (kept, size 1 elsewhere); over all
    of ``v`` when ``dim == -1``. Differentiable."""
    if dim == -1:
        return (v * v).sum().sqrt()
    axes = tuple(a for a in range(v.ndim) if a != dim)
    return (v * v).sum(dim=axes, keepdim=True).sqrt()


class _WeightNorm(Module):
    """``w = g * v / ||v||`` (the norm over every dimension but ``dim``)."""

    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        return norm_except_dim(weight, self.dim).detach(), weight.detach()


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (Salimans & Kingma, 2016): magnitude
    ``original0`` (g) and direction ``original1`` (v) are learned separately."""
    if dim is not None and dim < -1:
        dim += getattr(module, name).ndim
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def _normalize(x: np.ndarray, eps: float) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), eps)


class _SpectralNorm(Module):
    """``w / sigma(w)``, sigma the largest singular value of ``w`` viewed as a matrix (``dim`` first),
    estimated by power iteration on the buffers ``_u`` and ``_v`` (advanced in training mode)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12,
                 initial_iterations: int = 15, v_first: bool = False):
        # (the hook-based legacy form starts without iterating and updates v before u)
        super().__init__()
        self.v_first = v_first
        ndim = weight.ndim
        if not -ndim <= dim < max(ndim, 1):
            raise ConfigError(f"spectral_norm: dim must be in [-{ndim}, {ndim - 1}] for a {ndim}-d weight, got {dim}")
        if n_power_iterations <= 0:
            raise ConfigError(f"spectral_norm: n_power_iterations must be positive, got {n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            mat = self._matrix(weight.data)
            h, w = mat.shape
            rng = default_generator.np
            self.register_buffer("_u", Tensor._wrap(_normalize(rng.standard_normal(h).astype(mat.dtype), eps)))
            self.register_buffer("_v", Tensor._wrap(_normalize(rng.standard_normal(w).astype(mat.dtype), eps)))
            self._power_method(mat, initial_iterations)

    def _matrix(self, w: np.ndarray) -> np.ndarray:
        if self.dim != 0:
            w = np.moveaxis(w, self.dim, 0)
        return w.reshape(w.shape[0], -1)

    def _power_method(self, mat: np.ndarray, n: int) -> None:
        u, v = self._u.data, self._v.data
        for _ in range(n):
            if self.v_first:
                v[...] = _normalize(mat.conj().T @ u, self.eps)
            u[...] = _normalize(mat @ v, self.eps)
            if not self.v_first:
                v[...] = _normalize(mat.conj().T @ u, self.eps)

    def forward(self, weight):
        if weight.ndim == 1:
            return weight / (weight * weight).sum().sqrt().clamp(min=self.eps)
        if self.training:
            with no_grad():
                self._power_method(self._matrix(weight.data), self.n_power_iterations)
        w = weight if self.dim == 0 else weight.permute(self.dim, *(a for a in range(weight.ndim) if a != self.dim))
        mat = w.reshape(w.shape[0], -1)
        u, v = Tensor._wrap(self._u.data.copy()), Tensor._wrap(self._v.data.copy())
        sigma = (u * (mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm (Miyato et al., 2018), re-estimated by
    ``n_power_iterations`` of power iteration at each access in training mode. ``dim`` defaults
    to 1 for transposed convolutions (their output channels), else 0."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ConfigError(f"spectral_norm: module {type(module).__name__} has no parameter or buffer named {name!r}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
