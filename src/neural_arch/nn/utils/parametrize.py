"""``nn.utils.parametrize``: compute a module's tensor from other tensors on every access, as
``torch.nn.utils.parametrize``.

``register_parametrization(module, "weight", P())`` replaces the parameter ``weight`` by
``module.parametrizations.weight`` (a ``ParametrizationList``) that holds the unconstrained
tensor(s) (``original``, or ``original0``, ``original1``, ... when ``P.right_inverse`` returns
several) and computes ``weight = P(original)`` whenever ``module.weight`` is read, with autograd
through it. The state-dict keys are torch's (``parametrizations.weight.original0``), so a torch
state dict of a parametrized module loads.

As in torch, the module's class is swapped for a subclass that adds a property per
parametrized name; ``remove_parametrizations`` restores a plain parameter and the class.
"""

from __future__ import annotations

import contextlib

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError
from neural_arch.nn.modules.container import ModuleDict, ModuleList
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import Parameter

__all__ = ["ParametrizationList", "cached", "is_parametrized", "register_parametrization",
           "remove_parametrizations", "type_before_parametrizations"]

_cache_enabled = 0
_cache: dict = {}


@contextlib.contextmanager
def cached():
    """Inside this context each parametrized tensor is computed once and reused (e.g. a weight
    read at every step of a recurrent loop)."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and the original tensor(s) they read."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False):
        super().__init__(modules)
        self.unsafe = unsafe
        new = original
        with no_grad():
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    new = module.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        requires_grad = original.requires_grad
        if self.is_tensor:
            if not unsafe and (new.shape != original.shape or new.dtype != original.dtype):
                raise ConfigError(f"register_parametrization: right_inverse changed the tensor's shape or dtype "
                                  f"({original.shape}, {original.dtype} -> {new.shape}, {new.dtype}); pass unsafe=True "
                                  "if that is intended")
            # keep the Parameter object (an optimizer may already hold it), with the new values
            original.data = new.data.copy() if new is not original else original.data
            self.original = original if isinstance(original, Parameter) else Parameter(original.data, requires_grad)
        else:
            for i, t in enumerate(new):
                if not isinstance(t, Tensor):
                    raise ConfigError(f"register_parametrization: right_inverse must return Tensors, got "
                                      f"{type(t).__name__} at position {i}")
                self.register_parameter(f"original{i}", Parameter(t.data.copy(), requires_grad))
            self.ntensors = len(new)

    def right_inverse(self, value: Tensor) -> None:
        """Set the original tensor(s) so that the parametrization computes ``value``."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise ConfigError(f"parametrization {type(module).__name__} has no right_inverse, so the "
                                      "tensor cannot be assigned")
                value = module.right_inverse(value)
            if self.is_tensor:
                self.original.data[...] = value.data
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").data[...] = t.data

    def forward(self):
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _property(name: str) -> property:
    def get(self):
        plist = self.parametrizations[name]
        if not _cache_enabled:
            return plist()
        key = (id(self), name)
        if key not in _cache:
            _cache[key] = plist()
        return _cache[key]

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set_, doc=f"``{name}``, computed by its parametrizations on every access")


def _inject_class(module: Module) -> None:
    cls = module.__class__
    param_cls = type(f"Parametrized{cls.__name__}", (cls,), {"_original_class": cls})
    object.__setattr__(module, "__class__", param_cls)


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has parametrizations (on ``tensor_name`` if given)."""
    plists = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(plists, ModuleDict):
        return False
    return len(plists) > 0 if tensor_name is None else tensor_name in plists._modules


def type_before_parametrizations(module: Module) -> type:
    """The module's class as it was before any parametrization was registered."""
    return module.__class__._original_class if is_parametrized(module) else type(module)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` the output of ``parametrization`` applied to the unconstrained
    tensor(s) stored in ``module.parametrizations[tensor_name]``. A second registration on the
    same name chains after the first. Returns the module."""
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            with no_grad():
                before = getattr(module, tensor_name)
                after = parametrization(before)
            if after.shape != before.shape or after.dtype != before.dtype:
                raise ConfigError(f"register_parametrization: {type(parametrization).__name__} changes the shape or "
                                  f"dtype of {tensor_name!r}; pass unsafe=True if that is intended")
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name in module._parameters or tensor_name in module._buffers:
        original = module._parameters.get(tensor_name, module._buffers.get(tensor_name))
    else:
        raise ConfigError(f"register_parametrization: module {type(module).__name__} has no parameter or buffer "
                          f"named {tensor_name!r}")
    if not unsafe:
        with no_grad():
            out = parametrization(original)
        if not isinstance(out, Tensor):
            raise ConfigError(f"register_parametrization: {type(parametrization).__name__} must return a Tensor, "
                              f"got {type(out).__name__}")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_class(module)
        module.parametrizations = ModuleDict()
    setattr(module.__class__, tensor_name, _property(tensor_name))
    module.parametrizations[tensor_name] = plist
    return module


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo ``register_parametrization`` on ``tensor_name``: the tensor becomes a plain parameter again,
    holding its current parametrized value (``leave_parametrized=True``) or the original."""
    if not is_parametrized(module, tensor_name):
        raise ConfigError(f"remove_parametrizations: module {type(module).__name__} has no parametrization on "
                          f"{tensor_name!r}")
    plist = module.parametrizations[tensor_name]
    if leave_parametrized:
        with no_grad():
            value = getattr(module, tensor_name)
        if plist.is_tensor and value.shape == plist.original.shape:
            plist.original.data = value.data.copy()
            param = plist.original
        else:
            param = Parameter(value.data.copy(), plist.original0.requires_grad if not plist.is_tensor else True)
    else:
        if not plist.is_tensor:
            raise ConfigError("remove_parametrizations: leave_parametrized=False needs a parametrization with a "
                              "single original tensor")
        param = plist.original
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    module.register_parameter(tensor_name, param)
    if not is_parametrized(module):
        del module._modules["parametrizations"]
        object.__setattr__(module, "__class__", module.__class__._original_class)
    return module
