"""``summary(model, input_size=...)``: a torchinfo-style table of a model, and an estimate of its training memory.

One forward pass on zeros of ``input_size`` (a tuple, or a list of tuples for
several inputs, each of ``dtypes``) with a forward hook on every module records,
per layer: the output shape, its parameters (its own, not its children's),
whether they are trainable, and its multiply-adds:

    Linear     out_features * in_features per output row
    Conv*d     output elements * (in_channels / groups) * prod(kernel_size)
    Embedding, norms, activations, pooling: counted as 0 (no products)

Memory (bytes): parameters; gradients (one per trainable parameter); optimizer
state (``optimizer_slots`` arrays per trainable parameter: 2 for Adam/AdamW, 1 for
SGD with momentum); activations: the outputs of the leaf modules, which backward
keeps (an estimate: an op may save more or less than its output).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neural_arch.autograd import Tensor
from neural_arch.backend import float32
from neural_arch.errors import ConfigError
from neural_arch.ops import tensor


@dataclass
class LayerRow:
    name: str
    kind: str
    depth: int
    output_shape: tuple
    params: int
    trainable: bool
    mult_adds: int


@dataclass
class ModelSummary:
    """The table (``rows``), totals and memory estimate; ``str()`` renders it."""

    rows: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    mult_adds: int = 0
    param_bytes: int = 0
    grad_bytes: int = 0
    optimizer_bytes: int = 0
    activation_bytes: int = 0
    input_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes + self.activation_bytes + self.input_bytes

    def __str__(self) -> str:
        header = f"{'layer (type)':<44}{'output shape':<22}{'params':>12}{'trainable':>11}{'mult-adds':>16}"
        lines = ["=" * len(header), header, "=" * len(header)]
        for r in self.rows:
            label = ("  " * r.depth + f"{r.name or '(model)'} ({r.kind})")[:43]
            lines.append(f"{label:<44}{list(r.output_shape)!s:<22}{r.params:>12,}"
                         f"{('yes' if r.trainable else 'no') if r.params else '-':>11}{r.mult_adds:>16,}")
        lines += ["=" * len(header),
                  (f"total params: {self.total_params:,}   trainable: {self.trainable_params:,}   "
                   f"non-trainable: {self.total_params - self.trainable_params:,}"),
                  f"total mult-adds: {self.mult_adds:,}",
                  "-" * len(header),
                  f"input:                 {_mb(self.input_bytes)}",
                  f"parameters:            {_mb(self.param_bytes)}",
                  f"gradients:             {_mb(self.grad_bytes)}",
                  f"optimizer state:       {_mb(self.optimizer_bytes)}",
                  f"activations (fwd):     {_mb(self.activation_bytes)}",
                  f"estimated total:       {_mb(self.total_bytes)}",
                  "=" * len(header)]
        return "\n".join(lines)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.2f} KiB"


def _mult_adds(module, output) -> int:
    kind = type(module).__name__
    if kind == "Linear":
        rows = int(np.prod(output.shape[:-1])) if output.ndim > 1 else 1
        return rows * module.in_features * module.out_features
    if kind.startswith("Conv") and hasattr(module, "kernel_size"):
        kernel = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,)
        return int(np.prod(output.shape)) * (module.in_channels // module.groups) * int(np.prod(kernel))
    return 0


def summary(model, input_size=None, dtypes=None, input_data=None, optimizer_slots: int = 2,
            batch_dim: bool = True) -> ModelSummary:
    """Run ``model`` once on zeros of ``input_size`` and return its :class:`ModelSummary`.

    Args:
        input_size: the input's shape with its batch dimension, e.g. ``(1, 1, 28, 28)``; a list of
            shapes for a model with several inputs.
        dtypes: the dtype of each input (default float32); integer dtypes for token ids.
        input_data: real inputs instead of ``input_size`` (a Tensor or a list of them).
        optimizer_slots: state arrays the optimizer keeps per trainable parameter (Adam: 2).
    """
    inputs = _inputs(input_size, dtypes, input_data)
    result = ModelSummary(input_bytes=sum(int(x.data.nbytes) for x in inputs))
    names = {id(m): (name, name.count(".") + (1 if name else 0)) for name, m in model.named_modules()}
    handles = []

    def hook(module, args, output):
        name, depth = names[id(module)]
        out = output[0] if isinstance(output, (tuple, list)) else output
        own = [p for _, p in module.named_parameters(recurse=False)]
        n_params = sum(int(p.numel()) for p in own)
        leaf = not any(True for _ in module.children())
        shape = tuple(out.shape) if isinstance(out, Tensor) else ()
        mult_adds = _mult_adds(module, out) if isinstance(out, Tensor) else 0
        result.rows.append(LayerRow(name, type(module).__name__, depth, shape, n_params,
                                    any(p.requires_grad for p in own), mult_adds))
        result.mult_adds += mult_adds
        if leaf and isinstance(out, Tensor):
            result.activation_bytes += int(out.data.nbytes)

    for module in dict.fromkeys(m for _, m in model.named_modules()):
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.train()
        model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    result.rows.sort(key=lambda r: order.get(r.name, 0))  # hooks fire children first: back to tree order
    params = list(dict.fromkeys(model.parameters()))
    result.total_params = sum(int(p.numel()) for p in params)
    trainable = [p for p in params if p.requires_grad]
    result.trainable_params = sum(int(p.numel()) for p in trainable)
    result.param_bytes = sum(int(p.data.nbytes) for p in params)
    result.grad_bytes = sum(int(p.data.nbytes) for p in trainable)
    result.optimizer_bytes = optimizer_slots * result.grad_bytes
    return result


def _inputs(input_size, dtypes, input_data) -> list:
    if input_data is not None:
        return list(input_data) if isinstance(input_data, (list, tuple)) else [input_data]
    if input_size is None:
        raise ConfigError("summary: give input_size=(batch, ...) or input_data=...")
    sizes = [input_size] if input_size and not isinstance(input_size[0], (tuple, list)) else list(input_size)
    dtypes = list(dtypes) if dtypes is not None else [float32] * len(sizes)
    if len(dtypes) != len(sizes):
        raise ConfigError(f"summary: {len(sizes)} input sizes but {len(dtypes)} dtypes")
    if any(not all(isinstance(d, int) and d > 0 for d in s) for s in sizes):
        raise ConfigError(f"summary: input_size must hold positive integers, got {input_size}")
    return [tensor(np.zeros(tuple(s), dtype=np.dtype(d))) for s, d in zip(sizes, dtypes)]

