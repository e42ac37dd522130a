"""Export a model, check it with onnx's checker, run it in onnxruntime at other sizes, compare with ours."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import neural_arch as na
import onnx
from neural_arch import nn
from neural_arch.onnx import export


class Call(nn.Module):
    """A module whose forward is ``fn(inner, *args)``: exports one method of a model (e.g. one CLIP tower)
    with the model's parameter names."""

    def __init__(self, inner, fn):
        super().__init__()
        self.inner = inner
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.inner, *args)


def ours(model, args) -> list:
    """Our eager outputs, flattened like the exporter flattens them."""
    from neural_arch.graph.tracer import _flatten

    with na.no_grad():
        out = model(*[na.tensor(a) for a in args])
    return [t.numpy() for t in _flatten(out)]


def check_export(tmp_path, model, trace_args, run_args, input_names, output_names=None, dynamic_axes=None,
                 opset=None, atol=1e-4, rtol=1e-4):
    """Export at ``trace_args``; at each of ``run_args`` (tuples of arrays) onnxruntime == ours."""
    if hasattr(model, "eval"):
        model.eval()
    path = tmp_path / "model.onnx"
    export(model, tuple(na.tensor(a) for a in trace_args), path, input_names=input_names,
           output_names=output_names, dynamic_axes=dynamic_axes, opset_version=opset)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for args in run_args:
        got = sess.run(None, dict(zip(input_names, args)))
        want = ours(model, args)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape, (g.shape, w.shape)
            np.testing.assert_allclose(g, w, atol=atol, rtol=rtol)
    return proto, sess
