"""The hook-based ``nn.utils.weight_norm`` / ``spectral_norm`` (torch's older API, still public):
the module keeps ``weight_g``/``weight_v`` (or ``weight_orig`` and the buffers ``weight_u``/
``weight_v``) and a forward pre-hook recomputes ``module.weight`` before every call.
``nn.utils.parametrizations`` holds the newer form of both."""

from __future__ import annotations

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import Parameter
from neural_arch.nn.utils.parametrizations import _SpectralNorm, norm_except_dim

__all__ = ["remove_spectral_norm", "remove_weight_norm", "spectral_norm", "weight_norm"]


def _take_parameter(module: Module, name: str) -> Parameter:
    weight = module._parameters.get(name)
    if weight is None:
        raise ConfigError(f"module {type(module).__name__} has no parameter named {name!r}")
    del module._parameters[name]
    return weight


class _WeightNormHook:
    def __init__(self, name: str, dim: int):
        self.name, self.dim = name, dim

    def compute(self, module: Module) -> Tensor:
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, self.dim))

    def __call__(self, module: Module, args) -> None:
        object.__setattr__(module, self.name, self.compute(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split ``module.<name>`` into ``<name>_g`` (magnitude) and ``<name>_v`` (direction);
    ``<name> = g * v / ||v||`` is recomputed before each forward. Prefer
    ``nn.utils.parametrizations.weight_norm``."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, _WeightNormHook) and hook.name == name:
            raise ConfigError(f"weight_norm: {name!r} of {type(module).__name__} already has weight norm")
    weight = _take_parameter(module, name)
    dim = -1 if dim is None else (dim + weight.ndim if dim < -1 else dim)
    hook = _WeightNormHook(name, dim)
    with no_grad():
        g = norm_except_dim(weight, dim)
    module.register_parameter(name + "_g", Parameter(g.data.copy()))
    module.register_parameter(name + "_v", Parameter(weight.data))
    object.__setattr__(module, name, hook.compute(module))
    module.register_forward_pre_hook(hook)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Fold ``<name>_g`` and ``<name>_v`` back into one parameter ``<name>`` and drop the hook."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, _WeightNormHook) and hook.name == name:
            with no_grad():
                weight = hook.compute(module)
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_g"], module._parameters[name + "_v"]
            module.__dict__.pop(name, None)
            module.register_parameter(name, Parameter(weight.data.copy()))
            return module
    raise ConfigError(f"remove_weight_norm: weight_norm of {name!r} not found in {type(module).__name__}")


class _SpectralNormHook:
    def __init__(self, name: str, norm: _SpectralNorm):
        self.name, self.norm = name, norm

    def __call__(self, module: Module, args) -> None:
        self.norm._u, self.norm._v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        self.norm.training = module.training
        object.__setattr__(module, self.name, self.norm(getattr(module, self.name + "_orig")))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm before each forward, kept as ``<name>_orig`` with
    the power-iteration vectors in the buffers ``<name>_u`` and ``<name>_v``. Prefer
    ``nn.utils.parametrizations.spectral_norm``."""
    weight = _take_parameter(module, name)
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    norm = _SpectralNorm(weight, n_power_iterations, dim, eps, initial_iterations=0, v_first=True)
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", norm._u)
    module.register_buffer(name + "_v", norm._v)
    hook = _SpectralNormHook(name, norm)
    with no_grad():
        object.__setattr__(module, name, weight / 1.0)
    training, module.training = module.training, False
    hook(module, ())
    module.training = training
    module.register_forward_pre_hook(hook)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Make ``<name>`` a plain parameter again (its current normalised value) and drop the hook."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, _SpectralNormHook) and hook.name == name:
            with no_grad():
                hook.norm.training = False
                weight = hook.norm(getattr(module, name + "_orig"))
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_orig"]
            del module._buffers[name + "_u"], module._buffers[name + "_v"]
            module.__dict__.pop(name, None)
            module.register_parameter(name, Parameter(weight.data.copy()))
            return module
    raise ConfigError(f"remove_spectral_norm: spectral_norm of {name!r} not found in {type(module).__name__}")
