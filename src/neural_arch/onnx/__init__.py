"""ONNX export from the traced graph: ``onnx.export(model, args, f, input_names, output_names,
dynamic_axes, opset_version, do_constant_folding)``, torch.onnx.export's signature.

    na.onnx.export(model, (ids,), "gpt2.onnx", input_names=["input_ids"], output_names=["logits"],
                   dynamic_axes={"input_ids": {0: "batch", 1: "seq"}})

Needs the ``onnx`` extra (``pip install 'neural-arch[onnx]'``). The op -> ONNX table is ``ops.OPS``.
"""

from neural_arch.onnx.export import DEFAULT_OPSET, export

__all__ = ["DEFAULT_OPSET", "export"]
