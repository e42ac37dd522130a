"""``export``: a model to an ONNX file, through the traced graph (torch.onnx.export's signature)."""

from __future__ import annotations

import os

from neural_arch.errors import ExportError
from neural_arch.graph import trace
from neural_arch.graph.dims import Dim
from neural_arch.graph.tracer import _input_names

DEFAULT_OPSET = 17


def export(model, args, f=None, input_names=None, output_names=None, dynamic_axes=None,
           opset_version: int | None = None, do_constant_folding: bool = True, verbose: bool = False):
    """Trace ``model(*args)`` and write it as ONNX to ``f`` (a path or a binary file); returns the
    ``onnx.ModelProto``.

    Args:
        model: an ``nn.Module`` (exported in eval mode, as torch does; its mode is restored) or a
            function of tensors.
        args: the example inputs: a Tensor / NumPy array or a tuple of them.
        f: where to write (None: only return the model).
        input_names, output_names: names of the graph's inputs and outputs (default ``input_0``...
            / ``output_0``...). Outputs are the tensors the model returns, flattened in order
            (tuples, dicts and dataclass outputs such as ``CausalLMOutputWithPast``).
        dynamic_axes: ``{name: {axis: "symbol"}}`` (or ``{name: [axis, ...]}``) for inputs; the
            outputs' symbolic sizes follow from the trace (entries for outputs only rename nothing).
        opset_version: the ONNX opset (17 to 21; default 17). From 20, GELU is the ``Gelu`` op.
        do_constant_folding: store linear layers' weights pre-transposed (no Transpose at run time).

    Raises ``ExportError`` for an op with no ONNX mapping (naming the op and the module path it was
    called from), for Python control flow that changes with a dynamic size, and for constants built
    from the inputs in a way the exporter cannot rebuild.
    """
    # onnx is an optional extra: imported by the first export, not with neural_arch.onnx
    import onnx  # noqa: PLC0415
    from neural_arch.onnx.builder import Builder, onnx_dtype  # noqa: PLC0415 - imports onnx
    from neural_arch.onnx.ops import OPS  # noqa: PLC0415 - imports onnx through the builder

    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if not 17 <= opset <= 21:
        raise ExportError(f"onnx.export: opset_version must be between 17 and 21, got {opset}")
    args = args if isinstance(args, tuple) else (args,)
    is_module = hasattr(model, "named_parameters") and hasattr(model, "eval")
    modes = [(m, m.training) for m in model.modules()] if is_module else []  # each module's own mode
    if is_module:
        model.eval()
    try:
        names = _input_names(model, args, input_names)
        in_axes = {k: v for k, v in (dynamic_axes or {}).items() if k in names or isinstance(k, int)}
        graph = trace(model, *args, dynamic_axes=in_axes, input_names=names)
    finally:
        for m, training in modes:
            m.training = training
    b = Builder(graph, opset, do_constant_folding, root=model if is_module else None)
    for name in graph.inputs:
        b.names[name] = name
    for node in graph.nodes:
        conv = OPS.get(node.op)
        if conv is None:
            raise ExportError(f"onnx.export: op {node.op} (called in {node.module or 'the top level'} of "
                              f"{type(model).__name__}) has no ONNX mapping; add one to neural_arch/onnx/ops.py")
        xs = [b.value(n) for n in node.inputs]
        try:
            b.names[node.output] = conv(b, node, xs)
        except ExportError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"onnx.export: converting {node.op} (in {node.module or 'the top level'}) failed: "
                              f"{exc!r}") from exc
    out_names = list(output_names or [])
    out_names += [f"output_{i}" for i in range(len(out_names), len(graph.outputs))]
    outputs = []
    seen = set()
    for name, gname in zip(out_names, graph.outputs):
        b.add("Identity", [b.value(gname)], outputs=[name])
        if name in seen:
            raise ExportError(f"onnx.export: output name {name!r} given twice")
        seen.add(name)
        v = graph.values[gname]
        outputs.append(onnx.helper.make_tensor_value_info(name, onnx_dtype(v.dtype), _dims(v.shape)))
    inputs = [onnx.helper.make_tensor_value_info(n, onnx_dtype(graph.values[n].dtype), _dims(graph.values[n].shape))
              for n in graph.inputs]
    used = {i for node in b.nodes for i in node.input}
    unused = [i for i in inputs if i.name not in used]
    if unused and verbose:
        print(f"onnx.export: inputs {[i.name for i in unused]} are not used by the graph")
    proto = b.model(inputs, outputs, f"exported from {type(model).__name__} by neural-arch")
    if f is not None:
        data = proto.SerializeToString()
        if isinstance(f, (str, os.PathLike)):
            tmp = f"{os.fspath(f)}.tmp{os.getpid()}"
            with open(tmp, "wb") as out:  # written whole, then renamed: never a half-written model
                out.write(data)
            os.replace(tmp, f)
        else:
            f.write(data)
    if verbose:
        graph.print_tabular()
    return proto


def _dims(shape) -> list:
    """ONNX's dims: a bare symbol keeps its name; an expression stays unnamed (None)."""
    return [d.is_symbol() if isinstance(d, Dim) else int(d) for d in shape]
