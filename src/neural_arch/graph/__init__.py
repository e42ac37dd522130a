"""The traced graph IR: ``trace(model, *example_args, dynamic_axes=...) -> Graph``.

    g = graph.trace(model, ids, dynamic_axes={"input_ids": {0: "batch", 1: "seq"}})
    g.print_tabular()        # one row per op: name, inputs, parameters, shape, FLOPs, module
    g.to_svg("model.svg")    # Graphviz (the graphviz extra)

One graph, many consumers: ONNX export (``neural_arch.onnx``), FLOP counts, Graphviz rendering, and
(later) ``compile``'s replay all read it. Each node keeps its ``Function`` class and parameters so it
can be run again. Python control flow is recorded as the branch the example inputs took.
"""

from neural_arch.graph.dims import Dim
from neural_arch.graph.ir import ConstRef, Graph, Node, Value
from neural_arch.graph.tracer import op_name, trace

__all__ = ["ConstRef", "Dim", "Graph", "Node", "Value", "op_name", "trace"]
