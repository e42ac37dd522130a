"""``Module``: the base class of every layer and model.

A Module owns three ordered dictionaries: ``_parameters`` (learnable
Parameters), ``_buffers`` (state that is saved but not trained, e.g. the
running mean of a BatchNorm) and ``_modules`` (sub-modules). Assigning an
attribute routes it to the right one (``self.weight = Parameter(...)``,
``self.fc = Linear(...)``), which is what lets ``parameters()``,
``state_dict()``, ``to()`` and ``train()`` walk the whole tree.

Names follow torch exactly (``"encoder.layers.0.self_attn.in_proj_weight"``),
so a torch ``state_dict`` loads by name.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from neural_arch.autograd.tensor import Tensor, to_arguments, zero_grads
from neural_arch.backend import device as _device
from neural_arch.backend.dtypes import is_floating, resolve_dtype
from neural_arch.errors import CheckpointError, ConfigError, shape_str
from neural_arch.nn.parameter import Buffer, Parameter


class _IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: torch's ``(missing_keys, unexpected_keys)``."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"

    __str__ = __repr__


class RemovableHandle:
    """Returned by ``register_forward_hook`` and friends; ``remove()`` unregisters."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _as_array(value, key: str):
    """A state_dict value (na.Tensor, NumPy array, or anything with ``__array__``) -> array."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return value
    try:
        return np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - report which key, whatever went wrong
        raise CheckpointError(f"load_state_dict: value for {key!r} is a {type(value).__name__}, not an array") from exc


class Module:
    """Base class for all neural network layers, like ``torch.nn.Module``.

    Subclasses call ``super().__init__()`` first, assign Parameters,
    sub-modules and buffers as attributes, and define ``forward``::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(4, 8)
                self.fc2 = nn.Linear(8, 2)

            def forward(self, x):
                return self.fc2(self.fc1(x).relu())
    """

    training: bool
    _version = 1

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # -- calling -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if not self._forward_pre_hooks and not self._forward_hooks:
            return self.forward(*args, **kwargs)  # the common case: no hook machinery at all
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, args)`` runs before ``forward``; a non-None return replaces ``args``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook) -> RemovableHandle:
        """``hook(module, args, output)`` runs after ``forward``; a non-None return replaces the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # -- registration --------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Buffer):
            self._remove_from(name, self.__dict__, self._parameters, self._modules)
            self.register_buffer(name, Tensor._wrap(value.data), persistent=value.persistent)
        elif isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' (nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            modules = self.__dict__.get("_modules")
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._parameters, self._buffers)
            modules[name] = value
        elif self.__dict__.get("_modules") is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                f"(Module or None expected)")
            self._modules[name] = value
        elif self.__dict__.get("_buffers") is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, *dicts) -> None:
        for d in dicts:
            if name in d:
                del d[name]

    def __getattr__(self, name: str):
        # Only called when normal lookup fails, i.e. for registered parameters/buffers/modules.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    @staticmethod
    def _check_name(kind: str, name) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a Parameter (or ``None``, a declared-but-absent one such as ``bias=False``)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            f"(nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not trained. ``persistent=False`` keeps it out of ``state_dict``."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor "
                            f"or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {item!r} (looking up {target!r})")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r}")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer {name!r}")
        return mod._buffers[name]

    # -- walking the tree ----------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """Every module in the tree (self first), each once unless ``remove_duplicate=False``."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in get_members(module):
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """``(name, Parameter)`` pairs; a Parameter shared by two modules (weight tying) comes once,
        under its first name."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and gradients ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ConfigError(f"train(mode): mode must be a bool, got {mode!r}")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads(self.parameters(), set_to_none)

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module (children first) and on self, as torch does."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- dtype and device --------------------------------------------------------------------------
    def _apply(self, convert) -> Module:
        """Replace every parameter's and buffer's array with ``convert(array)`` in place, keeping
        the Parameter objects (so optimizers that hold them stay valid)."""
        for m in self.modules():
            for p in m._parameters.values():
                if p is None:
                    continue
                p.data = convert(p.data)
                if p.grad is not None:
                    p.grad.data = convert(p.grad.data)
            for b in m._buffers.values():
                if b is not None:
                    b.data = convert(b.data)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(tensor)``, in place.

        Only floating-point parameters and buffers change dtype (integer buffers such as
        ``num_batches_tracked`` keep theirs), as in torch."""
        device, dtype = to_arguments(args, kwargs)
        if dtype is not None:
            dtype = resolve_dtype(dtype)
            if not is_floating(dtype):
                raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
        dev = None if device is None else _device.Device(device)

        def convert(arr):
            if dtype is not None and is_floating(arr.dtype) and arr.dtype != dtype:
                arr = arr.astype(dtype)
            if dev is not None and _device.device_of(arr) != dev:
                arr = _device.to_device(arr, dev)
            return arr

        return self._apply(convert)

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    def bfloat16(self) -> Module:
        return self.to("bfloat16")

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Module:
        return self.to("cuda" if device is None else f"cuda:{device}")

    # -- state dict --------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer by its dotted name.

        Values are detached tensors that share memory with the module (as torch's do);
        ``keep_vars=True`` returns the Parameters themselves. A tied Parameter
        appears under each name that holds it, as in torch."""
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> _IncompatibleKeys:
        """Copy values into this module's parameters and buffers by name.

        Returns ``(missing_keys, unexpected_keys)``. With ``strict=True`` either kind of
        mismatch raises :class:`CheckpointError`; a shape mismatch always raises (naming the
        key and both shapes), and nothing is modified when anything is wrong. Values are cast
        to each parameter's dtype. ``assign=True`` makes the parameters use the given arrays
        instead of copying into them."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            arr = _as_array(state_dict[key], key)
            if tuple(arr.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {shape_str(arr.shape)} from checkpoint, "
                    f"the shape in current model is {shape_str(target.shape)}."
                )
                continue
            arrays[key] = arr
        if errors:  # check everything first: a failed load must leave the module untouched
            raise CheckpointError(f"Error(s) in loading state_dict for "
                                  f"{type(self).__name__}:\n\t" + "\n\t".join(errors))
        for key, arr in arrays.items():
            target = own[key]
            if assign:
                target.data = arr.astype(target.dtype, copy=False)
            else:
                if _device.device_of(arr) != _device.device_of(target.data):
                    arr = _device.to_device(arr, _device.device_of(target.data))
                target.data[...] = arr  # casts to the target's dtype
        return _IncompatibleKeys(missing, unexpected)

    # -- printing ------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside ``Name(...)``; layers override it (e.g. ``in_features=4, out_features=2``)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules:
            return f"{self._get_name()}({extra})"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"
