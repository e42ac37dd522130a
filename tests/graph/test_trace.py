"""graph.trace: one node per op with names, parameters, shapes (symbolic on dynamic axes), module paths,
parameter and FLOP counts, the table, DOT / SVG, replay, and the errors a user can cause."""

from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch import graph, nn
from neural_arch.autograd import function
from neural_arch.errors import ExportError
from neural_arch.graph import ConstRef, Dim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x)).softmax(-1)


def test_nodes_parameters_shapes_and_module_paths():
    model = Net().eval()
    g = graph.trace(model, na.randn(2, 4), dynamic_axes={"x": {0: "batch"}})
    assert [n.op for n in g.nodes][:3] == ["Linear", "ReLU", "Linear"]
    assert [n.module for n in g.nodes][:3] == ["body.0", "body.1", "head"]
    assert g.nodes[0].inputs == ["x", "body.0.weight", "body.0.bias"]
    assert {v.name for v in g.params()} == set(model.state_dict())
    assert g.num_parameters() == sum(p.numel() for p in model.parameters())
    out = g.values[g.outputs[0]]
    assert out.shape == (Dim.symbol("batch"), 3) and out.dtype == np.float32
    assert g.nodes[0].flops == 2 * 2 * 4 * 8 + 2 * 8  # a multiply-add is 2, plus the bias
    assert g.node_parameters(g.nodes[0]) == 40
    assert function._tracer is None  # the hook is off again


def test_symbolic_sizes_in_parameters_and_recognised_constants():
    from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel

    lm = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2)).eval()
    g = graph.trace(lambda ids: lm(ids, use_cache=False).logits, na.tensor(np.zeros((2, 5), np.int64)),
                    dynamic_axes={0: {0: "batch", 1: "seq"}})
    B, T = Dim.symbol("batch"), Dim.symbol("seq")
    reshapes = [n.params["shape"] for n in g.nodes if n.op == "Reshape"]
    assert (B, T, 2, 4) in reshapes  # q.view(B, T, nh, hs), sizes as symbols
    assert g.values[g.outputs[0]].shape == (B, T, 20)
    positions = [g.values[n.params["ids"].name] for n in g.nodes if n.op == "Embedding"][1]
    assert positions.recipe[:3] == ("arange", 1, 0)  # arange(T), rebuilt from the input's size
    assert g.example_sizes == {"batch": 2, "seq": 5}


def test_dim_fit_handles_products_and_offsets():
    from neural_arch.graph.dims import fit

    points = [{"b": b, "t": t} for b in (2, 3) for t in (5, 6)] + [{"b": 4, "t": 7}]  # the tracer's points
    d = fit([p["b"] * p["t"] for p in points], points, ["b", "t"])
    assert repr(d) == "b*t" and d.evaluate({"b": 7, "t": 9}) == 63
    assert repr(fit([p["t"] + 1 for p in points], points, ["b", "t"])) == "1+t"
    assert fit([p["t"] // 2 for p in points], points, ["b", "t"]) is None  # not a polynomial: refused


def test_print_tabular_dot_and_svg(capsys, tmp_path):
    g = graph.trace(Net().eval(), na.randn(2, 4), dynamic_axes={"x": {0: "batch"}})
    g.print_tabular()
    text = capsys.readouterr().out
    assert "linear_1" in text and "body.0" in text and "(batch, 8)" in text and "67 parameters" in text
    dot = g.to_dot()
    assert dot.startswith("digraph") and '"x" -> "linear_1"' in dot and "body.0.weight" not in dot
    assert "body.0.weight" in g.to_dot(show_params=True)
    svg = g.to_svg(tmp_path / "g.svg")
    assert "<svg" in svg and (tmp_path / "g.svg").read_text().startswith(svg[:20])


def test_replay_runs_the_recorded_ops_at_other_sizes():
    model = Net().eval()
    g = graph.trace(model, na.randn(2, 4), dynamic_axes={"x": {0: "batch"}})
    x = na.randn(5, 4)
    (y,) = g.replay(x)
    with na.no_grad():
        np.testing.assert_array_equal(y.numpy(), model(x).numpy())


def test_branch_on_values_is_recorded_as_taken():
    def f(x):
        return x.relu() if float(x.sum().item()) > 0 else x.exp()

    assert [n.op for n in graph.trace(f, na.ones(3)).nodes][-1] == "ReLU"
    assert [n.op for n in graph.trace(f, -na.ones(3)).nodes][-1] == "Exp"


def test_branch_on_a_dynamic_size_is_refused():
    def f(x):
        return x.relu() if x.shape[0] < 3 else x.exp()

    with pytest.raises(ExportError, match="different path"):
        graph.trace(f, na.randn(2, 4), dynamic_axes={0: {0: "batch"}})


def test_dynamic_axes_mistakes_are_typed():
    with pytest.raises(ExportError, match="not an input"):
        graph.trace(Net().eval(), na.randn(2, 4), dynamic_axes={"y": {0: "batch"}})
    with pytest.raises(ExportError, match="out of range"):
        graph.trace(Net().eval(), na.randn(2, 4), dynamic_axes={"x": {2: "batch"}})


def test_the_hook_is_removed_when_the_model_raises():
    def bad(x):
        x = x + 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        graph.trace(bad, na.randn(2))
    assert function._tracer is None


def test_array_parameters_become_graph_values():
    x = na.randn(3, 4)
    mask = np.array([True, False, True, False])
    g = graph.trace(lambda t: t.masked_fill(na.tensor(mask), 0.0), x)
    node = g.nodes[-1]
    assert node.op == "Where" and isinstance(node.params["cond"], ConstRef)
    np.testing.assert_array_equal(g.values[node.params["cond"].name].data, mask)


def test_tracing_a_training_model_leaves_its_buffers_as_they_were():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    g = graph.trace(model, na.randn(2, 1, 5, 5), dynamic_axes={0: {0: "batch"}})
    assert len(g) >= 2
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.data, before[k])
