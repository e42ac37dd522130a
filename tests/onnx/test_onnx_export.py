"""na.onnx.export's options and errors: names, opsets, constant folding, file objects, typed errors."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
from onnx_helpers import check_export

import neural_arch as na
import onnx
from neural_arch import nn
from neural_arch.errors import ExportError
from neural_arch.onnx import export


class Rolls(nn.Module):
    def forward(self, x):
        return na.roll(x, 1, 0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.body = Rolls()

    def forward(self, x):
        return self.body(self.fc(x))


def test_an_op_without_mapping_names_the_op_and_the_module():
    with pytest.raises(ExportError, match=r"Roll \(called in body of Net\)"):
        export(Net(), (na.randn(2, 4),))


def test_names_opset_and_constant_folding(tmp_path):
    model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 2)).eval()
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    proto, _ = check_export(tmp_path, model, [x], [(x[:1],)], ["features"], ["scores"], {"features": [0]}, opset=20)
    assert [i.name for i in proto.graph.input] == ["features"] and [o.name for o in proto.graph.output] == ["scores"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "features_dim0"
    ops = {n.op_type for n in proto.graph.node}
    assert "Gelu" in ops and "Transpose" not in ops  # opset 20 has Gelu; folding stores W^T
    assert {t.name for t in proto.graph.initializer} >= {"0.weight.T", "0.bias", "2.weight.T"}
    proto = export(model, (na.tensor(x),), do_constant_folding=False)
    assert "Transpose" in {n.op_type for n in proto.graph.node} and "Gelu" not in {n.op_type for n in proto.graph.node}


def test_writes_to_a_file_object_and_rejects_bad_opsets():
    buf = io.BytesIO()
    model = nn.Linear(3, 2)
    export(model, na.randn(1, 3), buf)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = np.ones((1, 3), np.float32)
    with na.no_grad():
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], model(na.tensor(x)).numpy(), atol=1e-6)
    with pytest.raises(ExportError, match="opset_version"):
        export(model, na.randn(1, 3), opset_version=9)


def test_a_mask_that_was_all_ones_when_traced_is_still_an_input(tmp_path):
    """The trace runs again with other input values, so a mask computed from an all-ones example is not baked in."""
    from neural_arch.models.bert import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=24, max_position_embeddings=16))
    rng = np.random.default_rng(3)
    ids, ones = rng.integers(0, 30, (2, 6)), np.ones((2, 6), np.int64)
    mask = ones.copy()
    mask[0, 3:] = 0
    check_export(tmp_path, model, [ids, ones], [(ids, mask)], ["input_ids", "attention_mask"],
                 ["last_hidden_state", "pooler_output"])


def test_a_model_in_training_mode_is_exported_in_eval_mode_and_restored(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.5)).eval()).train()
    model[2].eval()  # mixed modes: each module gets its own back
    proto = export(model, na.randn(2, 3))
    assert [m.training for m in model.modules()] == [True, True, True, False, False]
    assert "Dropout" not in {n.op_type for n in proto.graph.node}
    onnx.checker.check_model(proto, full_check=True)


def test_a_path_that_depends_on_input_values_is_refused():
    """GPT-2 skips its mask when every token is real; traced on such an example, the graph would ignore padding."""
    from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel

    lm = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2)).eval()

    def f(x, mask):
        return lm(x, attention_mask=mask, use_cache=False).logits

    with pytest.raises(ExportError, match="another path when the input values change"):
        export(f, (na.tensor(np.ones((2, 5), np.int64)), na.tensor(np.ones((2, 5), np.int64))))


def test_a_boolean_mask_index_is_refused():
    mask = np.array([True, False, True])
    with pytest.raises(ExportError, match="boolean mask index"):
        export(lambda x: x[na.tensor(mask)] * 2, (na.randn(3, 2),))
