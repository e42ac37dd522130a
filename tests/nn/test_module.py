"""Module: registration, traversal, state_dict (round trip, strict/non-strict, shape errors)
against torch's semantics, weight tying, hooks, train/eval, to(dtype), repr, containers."""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import neural_arch as na
import neural_arch.nn as nn
from neural_arch.errors import CheckpointError, IndexingError


class Net(nn.Module):
    def __init__(self, lib):
        super().__init__()
        self.emb = lib.Embedding(10, 4)
        self.body = lib.Sequential(lib.Linear(4, 6), lib.ReLU(), lib.Linear(6, 4))
        self.norm = lib.BatchNorm1d(4)
        self.register_buffer("scale", lib_tensor(lib, [2.0]))
        self.register_buffer("cache", lib_tensor(lib, [0.0]), persistent=False)
        self.head = lib.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # weight tying

    def forward(self, idx):
        return self.head(self.norm(self.body(self.emb(idx))) * self.scale)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        lib = torch.nn
        self.emb = lib.Embedding(10, 4)
        self.body = lib.Sequential(lib.Linear(4, 6), lib.ReLU(), lib.Linear(6, 4))
        self.norm = lib.BatchNorm1d(4)
        self.register_buffer("scale", torch.tensor([2.0]))
        self.register_buffer("cache", torch.tensor([0.0]), persistent=False)
        self.head = lib.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight


def lib_tensor(lib, v):
    return na.tensor(v)


def test_registration_and_names_match_torch():
    ours, ref = Net(nn), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in ref.named_children()]
    assert len(list(ours.parameters())) == len(list(ref.parameters())) == 7  # tied weight counted once
    assert "head.weight" in ours.state_dict() and "emb.weight" in ours.state_dict()
    assert ours.head.weight is ours.emb.weight
    assert all(isinstance(p, na.Tensor) and isinstance(p, nn.Parameter) for p in ours.parameters())
    assert "cache" not in ours.state_dict() and "cache" in dict(ours.named_buffers())


def test_load_torch_state_dict_and_outputs_match():
    ours, ref = Net(nn), TorchNet()
    result = ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == repr(ref.load_state_dict(ref.state_dict()))
    ours.eval(), ref.eval()
    idx = np.array([1, 2, 3, 9])
    with torch.no_grad():
        expected = ref.head(ref.norm(ref.body(ref.emb(torch.tensor(idx)))) * ref.scale).numpy()
    np.testing.assert_allclose(ours(na.tensor(idx)).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_and_sharing():
    a, b = Net(nn), Net(nn)
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict)
    b.load_state_dict(sd)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v.numpy(), v2.numpy())
    # values share memory with the module (as torch), and loading copies (no aliasing)
    sd["body.0.bias"].data[0] = 123.0
    assert a.body[0].bias.data[0] == 123.0
    assert b.body[0].bias.data[0] != 123.0
    assert b.state_dict()["head.weight"].data is not None
    assert b.head.weight is b.emb.weight  # tying survives loading


def test_strict_and_non_strict_semantics_match_torch():
    ours, ref = Net(nn), TorchNet()
    sd_o = {k: v for k, v in ours.state_dict().items() if k != "body.0.bias"}
    sd_o["extra.weight"] = na.zeros(2)
    sd_t = {k: v for k, v in ref.state_dict().items() if k != "body.0.bias"}
    sd_t["extra.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as err:
        ours.load_state_dict(sd_o)
    with pytest.raises(RuntimeError) as terr:
        ref.load_state_dict(sd_t)
    assert "Missing key(s)" in str(err.value) and '"body.0.bias"' in str(err.value)
    assert "Unexpected key(s)" in str(err.value) and '"extra.weight"' in str(err.value)
    assert "Missing key(s)" in str(terr.value)
    r_o = ours.load_state_dict(sd_o, strict=False)
    r_t = ref.load_state_dict(sd_t, strict=False)
    assert r_o.missing_keys == r_t.missing_keys == ["body.0.bias"]
    assert r_o.unexpected_keys == r_t.unexpected_keys == ["extra.weight"]
    assert isinstance(r_o, tuple) and r_o == (["body.0.bias"], ["extra.weight"])


def test_shape_mismatch_names_key_and_shapes_and_changes_nothing():
    m = Net(nn)
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = {k: v.numpy() + 1 for k, v in m.state_dict().items()}
    sd["body.2.weight"] = np.zeros((4, 7))
    for strict in (True, False):
        with pytest.raises(CheckpointError, match=r"body\.2\.weight.*\(4, 7\).*\(4, 6\)"):
            m.load_state_dict(sd, strict=strict)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_load_casts_to_param_dtype():
    m = nn.Linear(2, 3)
    m.load_state_dict({"weight": np.ones((3, 2), dtype=np.float64), "bias": np.zeros(3)})
    assert m.weight.dtype == np.float32 and m.weight.data.sum() == 6
    m.load_state_dict({"weight": np.full((3, 2), 2.0), "bias": np.zeros(3)}, assign=True)
    assert m.weight.dtype == np.float32 and m.weight.data.sum() == 12


def test_tying_trains_one_tensor_with_both_gradients():
    ours, ref = Net(nn).double(), TorchNet().double()
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    idx = np.array([1, 2, 2, 7])
    up = np.random.default_rng(0).standard_normal((4, 10))  # non-uniform: BatchNorm kills a plain sum's gradient
    (ours(na.tensor(idx)) * na.tensor(up)).sum().backward()
    (ref.head(ref.norm(ref.body(ref.emb(torch.tensor(idx)))) * ref.scale) * torch.tensor(up)).sum().backward()
    # the tied weight's gradient holds the embedding and the output-layer contributions
    np.testing.assert_allclose(ours.emb.weight.grad.numpy(), ref.emb.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.norm.running_mean.numpy(), ref.norm.running_mean.numpy(), rtol=1e-10)


def test_train_eval_propagate():
    m = Net(nn)
    m.eval()
    assert all(not x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    m.body.train(False)
    assert m.training and not m.body[0].training


def test_zero_grad_requires_grad_apply_to():
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    m(na.randn(4, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Linear", "Sequential"]  # children first, as torch
    w = m[0].weight
    m.double()
    assert m[0].weight is w and w.dtype == np.float64
    m.to(na.float32)
    assert w.dtype == np.float32
    bn = nn.BatchNorm1d(3).double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="floating point"):
        m.to(na.int64)


def test_forward_hooks():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    y = m(na.ones(1, 2))
    np.testing.assert_allclose(y.detach().numpy(), m.bias.detach().numpy()[None] + 1, rtol=1e-6)
    assert calls == [(1, 2)]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(m(na.ones(1, 2)).detach().numpy(),
                               (na.ones(1, 2) @ m.weight.T + m.bias).detach().numpy())
    assert calls == [(1, 2)]


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(na.ones(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = na.ones(2)
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.sub = nn.Linear(1, 1)
    del m.sub
    assert list(m.children()) == []
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope  # noqa: B018 - the error under test
    with pytest.raises(KeyError, match="'.'"):
        m.register_buffer("a.b", na.ones(1))

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(na.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_repr_matches_torch():
    ours = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8, 4, bias=False), nn.Dropout(0.1), nn.GELU(approximate="tanh"),
                         nn.LayerNorm(4), nn.Embedding(5, 4, padding_idx=0), nn.Softmax(dim=-1))
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 4, bias=False),
                              torch.nn.Dropout(0.1), torch.nn.GELU(approximate="tanh"), torch.nn.LayerNorm(4),
                              torch.nn.Embedding(5, 4, padding_idx=0), torch.nn.Softmax(dim=-1))
    assert repr(ours) == repr(ref)
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    t_layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    assert repr(layers) == repr(t_layers)


def test_containers():
    seq = nn.Sequential(OrderedDict([("a", nn.Linear(2, 3)), ("b", nn.ReLU())]))
    assert list(seq.state_dict()) == ["a.weight", "a.bias"]
    assert isinstance(seq[-1], nn.ReLU) and len(seq[:1]) == 1
    with pytest.raises(IndexingError):
        seq[5]
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2)).extend([nn.Linear(2, 2)])
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "Linear", "Linear"]
    assert list(nn.Sequential(*ml).state_dict())[:2] == ["1.weight", "1.bias"]
    del ml[0]
    assert list(ml.state_dict())[0] == "0.weight"
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.Linear(1, 1)
    assert list(md.keys()) == ["x", "y"] and "x" in md
    pl = nn.ParameterList([na.ones(2), nn.Parameter(na.zeros(3))])
    assert all(isinstance(p, nn.Parameter) for p in pl) and list(pl.state_dict()) == ["0", "1"]
    pd = nn.ParameterDict({"a": na.ones(1)})
    assert list(pd.state_dict()) == ["a"] and len(list(pd.parameters())) == 1
    tpl = torch.nn.ParameterList([torch.ones(2), torch.nn.Parameter(torch.zeros(3))])
    assert list(tpl.state_dict()) == list(pl.state_dict())


def test_deepcopy_and_pickle():
    m = Net(nn)
    c = copy.deepcopy(m)
    assert c.head.weight is c.emb.weight and c.emb.weight is not m.emb.weight
    np.testing.assert_array_equal(c.emb.weight.data, m.emb.weight.data)
    p = pickle.loads(pickle.dumps(m))
    assert isinstance(p.emb.weight, nn.Parameter) and p.emb.weight.requires_grad
    assert list(p.state_dict()) == list(m.state_dict())


def test_get_submodule_and_parameter():
    m = Net(nn)
    assert m.get_submodule("body.0") is m.body[0]
    assert m.get_parameter("body.2.bias") is m.body[2].bias
    assert m.get_buffer("norm.running_mean") is m.norm.running_mean
    with pytest.raises(AttributeError, match="nope"):
        m.get_submodule("body.nope")


def test_buffer_marker_registers_buffers_like_torch():
    m, t = nn.Module(), torch.nn.Module()
    m.a = nn.Buffer(na.ones(2))
    m.b = nn.Buffer(na.zeros(1), persistent=False)
    t.a = torch.nn.Buffer(torch.ones(2))
    t.b = torch.nn.Buffer(torch.zeros(1), persistent=False)
    assert list(m.state_dict()) == list(t.state_dict()) == ["a"]
    assert [n for n, _ in m.named_buffers()] == ["a", "b"]
    assert type(m.a) is na.Tensor
