"""The traced graph: ``Value`` (a tensor), ``Node`` (one op call), ``Graph`` (both, in order).

A node records everything needed to run its op again -- the ``Function`` class, the names of its
tensor inputs, its non-tensor parameters (arrays among them are themselves graph values, referred
to by ``ConstRef``) -- and what came out: shape (ints and symbolic ``Dim``), dtype, the module path
it was called from. Parameters and buffers are values named by their module path
(``encoder.layer.0.attention.query.weight``); other tensors the model made from data (masks,
position ids) are constants, or, when they change with a dynamic size, carry a ``recipe`` that says
how to build them from the inputs (see ``recognize.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ExportError
from neural_arch.graph.dims import Dim, dim_str, shape_text


@dataclass(frozen=True)
class ConstRef:
    """An array parameter of a node (a mask, an index array), stored as graph value ``name``."""

    name: str


@dataclass
class Value:
    """A tensor of the graph. ``kind``: input, param, buffer, const or node (an op's output)."""

    name: str
    kind: str
    shape: tuple  # ints and Dims
    dtype: np.dtype
    example_shape: tuple  # the concrete shape at the traced sizes
    data: np.ndarray | None = None  # params, buffers, constants: the array (at the traced sizes)
    recipe: tuple | None = None  # a constant whose values depend on dynamic sizes: how to build it
    module: str = ""  # for constants: the module that first used it

    @property
    def numel(self) -> int:
        return math.prod(self.example_shape)


@dataclass
class Node:
    """One op call: ``output = fn.apply(*inputs, **params)``."""

    index: int
    op: str  # the op's stable name (``Function.op_name`` or its class name)
    fn: type  # the Function class, for replay
    inputs: list  # value names
    params: dict  # non-tensor parameters; arrays among them as ConstRef
    output: str
    module: str  # the module path it was called from ("" for the top level)
    flops: int = 0
    extra: dict = field(default_factory=dict)


class Graph:
    """What a traced model computes: ``inputs`` -> ``nodes`` (in execution order) -> ``outputs``.

    ``symbols`` maps each dynamic size's name to the (input, axis) it is read from.
    """

    def __init__(self, values: dict, nodes: list, inputs: list, outputs: list, symbols: dict,
                 example_sizes: dict | None = None):
        self.values = values
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.symbols = symbols
        self.example_sizes = example_sizes or {}  # each symbol's size in the example inputs

    # -- running it again -----------------------------------------------------------------------------
    def replay(self, *args) -> list:
        """Run the recorded ops again on new inputs (Tensors or arrays), without the model's Python:
        each node's ``Function`` with its parameters, symbolic sizes evaluated for these inputs.
        Returns the output tensors. Constants that a model built from its inputs (``recipe``) are
        only valid at the traced sizes and values; replaying them elsewhere raises ``ExportError``."""
        arrays = {n: getattr(a, "data", a) for n, a in zip(self.inputs, args)}
        sizes = {s: arrays[n].shape[axis] for s, (n, axis) in self.symbols.items()}
        env = {n: a if isinstance(a, Tensor) else Tensor._wrap(np.asarray(a)) for n, a in zip(self.inputs, args)}

        def value(name):
            if name not in env:
                v = self.values[name]
                if v.recipe is not None:
                    raise ExportError(f"Graph.replay: constant {name} was computed from the inputs (first used in "
                                      f"{v.module or 'the top level'}); the graph cannot rebuild it in NumPy")
                env[name] = Tensor._wrap(v.data)
            return env[name]

        def resolve(p):
            if isinstance(p, ConstRef):
                return value(p.name).data
            if isinstance(p, Dim):
                return p.evaluate(sizes)
            if isinstance(p, (tuple, list)):
                return type(p)(resolve(x) for x in p)
            if isinstance(p, slice):
                return slice(resolve(p.start), resolve(p.stop), resolve(p.step))
            return p

        with no_grad():
            for node in self.nodes:
                env[node.output] = node.fn.apply(*[value(n) for n in node.inputs],
                                                 **{k: resolve(v) for k, v in node.params.items()})
        return [value(n) for n in self.outputs]

    # -- queries ------------------------------------------------------------------------------------
    def value(self, name: str) -> Value:
        return self.values[name]

    def params(self) -> list:
        """The parameter and buffer values, in first-use order."""
        return [v for v in self.values.values() if v.kind in ("param", "buffer")]

    def num_parameters(self) -> int:
        """Elements of the parameters (each shared parameter once; buffers not counted)."""
        return sum(v.numel for v in self.values.values() if v.kind == "param")

    def node_parameters(self, node: Node) -> int:
        return sum(self.values[n].numel for n in node.inputs if self.values[n].kind == "param")

    def total_flops(self) -> int:
        """Floating-point operations of one call at the traced sizes (a multiply-add counts 2)."""
        return sum(n.flops for n in self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {shape_text(self.values[n].shape)}" for n in self.inputs)
        return f"Graph({len(self.nodes)} nodes, inputs [{ins}], outputs {self.outputs})"

    # -- printing -----------------------------------------------------------------------------------
    def tabular(self) -> str:
        """The table ``print_tabular`` prints: one row per node."""
        rows = [("opcode", "name", "target", "args", "shape", "dtype", "params", "flops", "module")]
        for n in self.inputs:
            v = self.values[n]
            rows.append(("input", n, "", "", shape_text(v.shape), str(v.dtype), "", "", ""))
        for node in self.nodes:
            v = self.values[node.output]
            rows.append(("call_op", node.output, node.op, ", ".join(node.inputs) + _param_text(node.params),
                         shape_text(v.shape), str(v.dtype), str(self.node_parameters(node) or ""),
                         str(node.flops or ""), node.module))
        rows.append(("output", "output", "", ", ".join(self.outputs), "", "", "", "", ""))
        widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
        lines = ["  ".join(c[:60].ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"\n{len(self.nodes)} nodes, {self.num_parameters():,} parameters, "
                     f"{self.total_flops():,} FLOPs at the traced sizes")
        return "\n".join(lines)

    def print_tabular(self) -> None:
        """Print one row per node (as ``torch.fx.Graph.print_tabular``), then the totals."""
        print(self.tabular())

    # -- Graphviz -----------------------------------------------------------------------------------
    def to_dot(self, show_params: bool = False) -> str:
        """Graphviz DOT text: a box per op, an ellipse per input and output, edges labelled by shape.
        Parameters and constants are left out unless ``show_params``."""
        lines = ["digraph G {", '  rankdir=TB; node [fontname="Helvetica", fontsize=10];']
        for n in self.inputs:
            lines.append(f'  "{n}" [shape=ellipse, style=filled, fillcolor="#cde5ff", '
                         f'label="{n}\\n{shape_text(self.values[n].shape)}"];')
        shown = set(self.inputs)
        for node in self.nodes:
            label = f"{node.op}\\n{node.module}" if node.module else node.op
            lines.append(f'  "{node.output}" [shape=box, style=rounded, label="{label}"];')
            shown.add(node.output)
            for name in node.inputs:
                src = self.values[name]
                if src.kind in ("param", "buffer", "const") and not show_params:
                    continue
                if name not in shown:
                    lines.append(f'  "{name}" [shape=note, fontsize=8, label="{name}\\n{shape_text(src.shape)}"];')
                    shown.add(name)
                lines.append(f'  "{name}" -> "{node.output}" [label="{shape_text(src.shape)}", fontsize=8];')
        for i, name in enumerate(self.outputs):
            out = f"output_{i}"
            lines.append(f'  "{out}" [shape=ellipse, style=filled, fillcolor="#d5f5d5", label="{out}"];')
            lines.append(f'  "{name}" -> "{out}" [label="{shape_text(self.values[name].shape)}", fontsize=8];')
        lines.append("}")
        return "\n".join(lines)

    def to_svg(self, path=None, show_params: bool = False) -> str:
        """Render with Graphviz (the ``graphviz`` extra and the ``dot`` program); returns the SVG text
        and writes it to ``path`` if given."""
        try:
            import graphviz  # noqa: PLC0415 - the optional extra
        except ImportError as exc:
            raise ExportError("Graph.to_svg needs the graphviz package: pip install 'neural-arch[graphviz]' "
                              "(and Graphviz's dot program); to_dot() needs nothing") from exc
        svg = graphviz.Source(self.to_dot(show_params)).pipe(format="svg").decode()
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(svg)
        return svg


def _param_text(params: dict) -> str:
    if not params:
        return ""
    return " | " + ", ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(v) -> str:
    if isinstance(v, ConstRef):
        return v.name
    if isinstance(v, Dim):
        return dim_str(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_short(x) for x in v) + ")"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
