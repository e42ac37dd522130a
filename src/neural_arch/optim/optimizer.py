"""``Optimizer``: the base class of every optimizer, shaped like ``torch.optim.Optimizer``.

An optimizer holds ``param_groups`` (a list of dicts: ``"params"`` plus that
group's options, defaults filled in) and ``state`` (a dict keyed by the
Parameter, created lazily on the first step). Subclasses implement ``step``.

Updates happen in place on ``p.data`` (a NumPy array) outside the graph, so
a Parameter object keeps its identity across steps, and a float32 parameter
stays float32: every scalar in an update is a Python float, which NumPy does
not let widen a float32 array.

State values are arrays (and a Python ``int`` for ``step``; torch keeps a
float tensor there). ``state_dict()`` has torch's structure: ``{"state":
{param_index: {...}}, "param_groups": [{..., "params": [indices]}]}``.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from neural_arch.autograd import capture as _capture
from neural_arch.autograd.grad_mode import enable_grad
from neural_arch.autograd.tensor import Tensor, zero_grads
from neural_arch.backend import device as _device
from neural_arch.errors import CheckpointError, ConfigError


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def check_range(name: str, opt: str, value, low=0.0, high=None, low_open=False, high_open=True) -> None:
    """Raise ConfigError unless ``low <= value (< high)``; messages name the optimizer and option."""
    ok = value > low if low_open else value >= low
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{')' if high_open else ']'}"
        raise ConfigError(f"{name}: invalid {opt} value {value!r}, must be in {bounds}")


def check_adam_options(name: str, lr, eps, betas, weight_decay) -> None:
    """The checks that Adam and its variants (AdamW, Adamax, NAdam, RAdam) make, with torch's messages."""
    check_range(name, "learning rate", lr)
    check_range(name, "epsilon", eps)
    check_range(name, "beta parameter at index 0", betas[0], 0.0, 1.0)
    check_range(name, "beta parameter at index 1", betas[1], 0.0, 1.0)
    check_range(name, "weight_decay", weight_decay)


class Optimizer:
    """Base class: ``Optimizer(params, defaults)``.

    ``params`` is an iterable of Parameters or of dicts (param groups), each dict
    holding ``"params"`` and any options that override ``defaults`` for that group.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params argument given to the optimizer should be an iterable of Tensors "
                "or dicts, but got a Tensor; pass [tensor] or model.parameters()"
            )
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, not a set; use a list")
        param_groups = list(params)
        if not param_groups:
            raise ConfigError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (with its own options) to optimize, e.g. when unfreezing layers."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, not a set; use a list")
        else:
            group["params"] = list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ConfigError(f"{type(self).__name__}: can't optimize a non-leaf Tensor (use .detach() first)")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ConfigError(f"{type(self).__name__}: parameter group didn't specify a value of required "
                                  f"option '{name}'")
            group.setdefault(name, default)
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{type(self).__name__}: a parameter group contains the same parameter more than once")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing & set(ids):
            raise ConfigError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _capture.reports_calls(cls, "step", "zero_grad")  # na.compile replays them as opaque calls

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def _closure_loss(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [...]}`` with parameters replaced by
        their position across all groups, as in torch. Array state is returned as Tensors sharing
        memory with the optimizer (torch returns references too); deep-copy to snapshot."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {
                        k: (Tensor._wrap(v) if isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__")
                            else v)
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state saved by ``state_dict()`` onto this optimizer's parameters (matched by
        position). Arrays are copied and cast to each parameter's dtype and device."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise CheckpointError(
                f"{type(self).__name__}.load_state_dict: the saved state has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise CheckpointError(
                    f"{type(self).__name__}.load_state_dict: parameter group {i} has {len(s['params'])} parameters "
                    f"in the saved state but {len(g['params'])} here"
                )
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, idx in zip(g["params"], s["params"]):
                id_map[idx] = p
        new_state: defaultdict = defaultdict(dict)
        for idx, pstate in state_dict["state"].items():
            idx = int(idx)
            if idx not in id_map:
                raise CheckpointError(f"{type(self).__name__}.load_state_dict: state for unknown parameter index {idx}")
            p = id_map[idx]
            new_state[p] = {k: self._restore_value(k, v, p) for k, v in pstate.items()}
        self.state = new_state
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            group = copy.deepcopy({k: v for k, v in s.items() if k != "params"})
            group["params"] = g["params"]
            new_groups.append(group)
        self.param_groups = new_groups

    @staticmethod
    def _restore_value(key: str, value, param):
        if key == "step":
            return int(value.item() if hasattr(value, "item") else value)
        arr = value.data if isinstance(value, Tensor) else value
        if isinstance(arr, np.ndarray) or hasattr(arr, "__cuda_array_interface__"):
            if arr.shape != param.shape and arr.size != 1:
                raise CheckpointError(
                    f"optimizer state {key!r} has shape {arr.shape} but its parameter has shape {param.shape}"
                )
            out = arr.astype(param.dtype) if arr.dtype.kind == "f" else arr.copy()  # a copy either way
            if isinstance(out, np.ndarray) and isinstance(param.data, np.ndarray) and out.shape == param.shape:
                out = _like(param.data, out)  # the one-pass steps want the state in the parameter's layout
            dev = _device.device_of(param.data)
            return _device.to_device(out, dev) if _device.device_of(out) != dev else out
        return copy.deepcopy(value)

    def _params_with_grad(self, group: dict):
        """``(param, grad array)`` for each parameter of a group that has a gradient."""
        return [(p, p.grad.data) for p in group["params"] if p.grad is not None]

    def _counted_state(self, p, *buffers: str) -> dict:
        """``p``'s state with this step counted in ``state["step"]``; created on the first step with
        a zero array like ``p`` under each name in ``buffers``."""
        state = self.state[p]
        if not state:
            state["step"] = 0
            state.update((name, np.zeros_like(p.data)) for name in buffers)
        state["step"] += 1
        return state


def _like(param, value):
    """``value`` copied into an array laid out in memory as ``param`` is (whatever that layout is)."""
    out = np.empty_like(param, dtype=value.dtype)
    out[...] = value
    return out


_capture.reports_calls(Optimizer, "zero_grad")
