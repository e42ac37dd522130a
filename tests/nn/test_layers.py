"""Layers: forward + backward parity with the same torch layer, weights copied by name
(load torch's state_dict into ours: our parameter names equal torch's), float64 and float32;
default initialisation statistics; layer-specific behaviour and errors."""

import math

import numpy as np
import pytest
import torch
from parity import compare, reference

import neural_arch as na
import neural_arch.nn as nn
from neural_arch.errors import ConfigError, ShapeError

TOL = {np.float64: (1e-9, 1e-11), np.float32: (2e-5, 2e-6)}


def check_layer(make_ours, make_torch, inputs, dtypes=(np.float64, np.float32), train=True, rtol=None, atol=None,
                out_index=None, call=None):
    """Build both layers, copy torch's weights into ours by name, run forward on the same inputs,
    backward with the same non-uniform upstream gradient; compare outputs, input grads, param grads
    and (for BatchNorm) buffers after the step."""
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        r, a = TOL[dtype]
        r, a = max(r, rtol or 0), max(a, atol or 0)
        torch.manual_seed(0)
        with reference():  # the torch layer: claimed for the parity record by the comparison below
            tm = make_torch().to(torch.float64 if dtype == np.float64 else torch.float32)
        om = make_ours().to(dtype)
        result = om.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
        assert result.missing_keys == [] and result.unexpected_keys == []
        tm.train(train)
        om.train(train)
        t_in = [torch.tensor(x.astype(dtype), requires_grad=True) if x.dtype.kind == "f" else torch.tensor(x)
                for x in inputs]
        o_in = [na.tensor(x.astype(dtype), requires_grad=True) if x.dtype.kind == "f" else na.tensor(x)
                for x in inputs]
        with reference():
            t_out = call(tm, *t_in) if call else tm(*t_in)
        o_out = call(om, *o_in) if call else om(*o_in)
        if out_index is not None:
            t_out, o_out = t_out[out_index], o_out[out_index]
        compare(o_out, t_out, rtol=r, atol=a, what=f"forward ({np.dtype(dtype)})")
        assert o_out.dtype == dtype
        up = rng.standard_normal(tuple(t_out.shape)).astype(dtype)
        t_out.backward(torch.tensor(up))
        o_out.backward(na.tensor(up))
        for i, (ti, oi) in enumerate(zip(t_in, o_in)):
            if ti.requires_grad:
                if oi.grad is None or ti.grad is None:  # an input the output does not depend on
                    assert (oi.grad is None or not oi.grad.data.any()) and (ti.grad is None or not ti.grad.any())
                    continue
                np.testing.assert_allclose(oi.grad.numpy(), ti.grad.numpy(), rtol=r, atol=a * 10,
                                           err_msg=f"grad of input {i} ({np.dtype(dtype)})")
        t_params = dict(tm.named_parameters())
        for name, p in om.named_parameters():
            tp = t_params[name]
            if tp.grad is None:
                assert p.grad is None or not p.grad.data.any(), name
                continue
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=r, atol=a * 10,
                                       err_msg=f"grad of {name} ({np.dtype(dtype)})")
        t_bufs = dict(tm.named_buffers())
        for name, b in om.named_buffers():
            np.testing.assert_allclose(b.numpy(), t_bufs[name].numpy(), rtol=r, atol=a, err_msg=f"buffer {name}")


def rnd(*shape, seed=1, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# -- linear and conv ---------------------------------------------------------------------------------------
def test_linear():
    check_layer(lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), [rnd(2, 4, 5)])
    check_layer(lambda: nn.Linear(5, 3, bias=False), lambda: torch.nn.Linear(5, 3, bias=False), [rnd(5)])


def test_linear_weight_is_column_major_and_so_is_its_gradient():
    import copy

    lin = nn.Linear(6, 4)
    w = lin.weight.data
    assert w.shape == (4, 6) and w.flags.f_contiguous and not w.flags.c_contiguous
    x = na.tensor(rnd(3, 5, 6).astype(np.float32))
    lin(x).sum().backward()
    g = lin.weight.grad.data
    assert g.flags.f_contiguous and g.flags.owndata  # written in place by the GEMM: no copy, no view
    np.testing.assert_allclose(g, np.ones((15, 4)).T @ x.data.reshape(15, 6), rtol=1e-5)
    assert copy.deepcopy(lin).weight.data.flags.f_contiguous
    # any layout works: a row-major weight (e.g. assigned) gives the same numbers
    row = nn.Linear(6, 4)
    row.load_state_dict({"weight": na.tensor(np.ascontiguousarray(w)), "bias": lin.bias.detach()}, assign=True)
    assert row.weight.data.flags.c_contiguous
    row(x).sum().backward()
    np.testing.assert_allclose(row(x).data, lin(x).data, rtol=1e-6)
    np.testing.assert_allclose(row.weight.grad.data, g, rtol=1e-6)
    assert row.weight.grad.data.flags.c_contiguous


def test_bilinear():
    check_layer(lambda: nn.Bilinear(3, 4, 2), lambda: torch.nn.Bilinear(3, 4, 2), [rnd(5, 3), rnd(5, 4, seed=2)])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                dict(groups=2, bias=False), dict(padding=2, padding_mode="reflect")], ids=str)
def test_conv2d(kw):
    check_layer(lambda: nn.Conv2d(4, 6, 3, **kw), lambda: torch.nn.Conv2d(4, 6, 3, **kw), [rnd(2, 4, 7, 6)])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, dilation=2), dict(padding="same"),
                                dict(padding=1, padding_mode="circular")], ids=str)
def test_conv1d(kw):
    check_layer(lambda: nn.Conv1d(3, 4, 3, **kw), lambda: torch.nn.Conv1d(3, 4, 3, **kw), [rnd(2, 3, 9)])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1), dict(groups=2, dilation=2)],
                         ids=str)
def test_conv_transpose2d(kw):
    check_layer(lambda: nn.ConvTranspose2d(4, 6, 3, **kw), lambda: torch.nn.ConvTranspose2d(4, 6, 3, **kw),
                [rnd(2, 4, 5, 5)])


def test_conv_transpose2d_output_size():
    x = rnd(1, 2, 4, 4)
    check_layer(lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1),
                lambda: torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), [x],
                call=lambda m, t: m(t, output_size=[8, 8]))


# -- pooling -----------------------------------------------------------------------------------------------
POOLS = [
    ("MaxPool2d", (3,), dict(stride=2, padding=1)), ("MaxPool2d", (2,), dict(ceil_mode=True)),
    ("MaxPool1d", (3,), dict(stride=1)), ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False)),
    ("AvgPool1d", (2,), dict()), ("AdaptiveAvgPool2d", ((3, 2),), dict()), ("AdaptiveMaxPool2d", (3,), dict()),
]


@pytest.mark.parametrize("name,args,kw", POOLS, ids=[f"{p[0]}{p[2]}" for p in POOLS])
def test_pooling(name, args, kw):
    shape = (2, 3, 9) if name.endswith("1d") else (2, 3, 7, 8)
    check_layer(lambda: getattr(nn, name)(*args, **kw), lambda: getattr(torch.nn, name)(*args, **kw),
                [rnd(*shape)])


# -- normalisation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("kw", [dict(), dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                                dict(momentum=0.3, eps=1e-3)], ids=str)
def test_batchnorm(kw, train):
    check_layer(lambda: nn.BatchNorm2d(3, **kw), lambda: torch.nn.BatchNorm2d(3, **kw), [rnd(4, 3, 5, 5)],
                train=train)
    check_layer(lambda: nn.BatchNorm1d(3, **kw), lambda: torch.nn.BatchNorm1d(3, **kw), [rnd(6, 3)], train=train)
    check_layer(lambda: nn.BatchNorm1d(3, **kw), lambda: torch.nn.BatchNorm1d(3, **kw), [rnd(6, 3, 4)], train=train)


def test_batchnorm_cumulative_average_over_steps():
    """momentum=None: running stats are the plain average over all batches seen (torch's rule)."""
    om, tm = nn.BatchNorm1d(2, momentum=None), torch.nn.BatchNorm1d(2, momentum=None)
    for k in range(5):
        x = rnd(8, 2, seed=k, scale=k + 1)
        om(na.tensor(x))
        tm(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(om.running_mean.numpy(), tm.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(om.running_var.numpy(), tm.running_var.numpy(), rtol=1e-5)
    assert int(om.num_batches_tracked.item()) == 5 and om.num_batches_tracked.dtype == np.int64


def test_batchnorm_eval_uses_running_stats_and_state_dict_has_buffers():
    m = nn.BatchNorm2d(3)
    assert list(m.state_dict()) == list(torch.nn.BatchNorm2d(3).state_dict())
    with pytest.raises(ShapeError, match="4D"):
        m(na.randn(2, 3))


def test_layernorm_rmsnorm_groupnorm():
    check_layer(lambda: nn.LayerNorm(6), lambda: torch.nn.LayerNorm(6), [rnd(2, 3, 6)])
    check_layer(lambda: nn.LayerNorm((3, 6), bias=False), lambda: torch.nn.LayerNorm((3, 6), bias=False),
                [rnd(2, 3, 6)])
    check_layer(lambda: nn.LayerNorm(6, elementwise_affine=False),
                lambda: torch.nn.LayerNorm(6, elementwise_affine=False), [rnd(4, 6)])
    check_layer(lambda: nn.RMSNorm(6), lambda: torch.nn.RMSNorm(6), [rnd(2, 3, 6)])
    check_layer(lambda: nn.RMSNorm(6, eps=1e-6), lambda: torch.nn.RMSNorm(6, eps=1e-6), [rnd(4, 6)])
    check_layer(lambda: nn.GroupNorm(2, 6), lambda: torch.nn.GroupNorm(2, 6), [rnd(3, 6, 4, 2)])
    check_layer(lambda: nn.GroupNorm(3, 6, affine=False), lambda: torch.nn.GroupNorm(3, 6, affine=False),
                [rnd(3, 6, 5)])


@pytest.mark.parametrize("kw", [dict(), dict(affine=True), dict(track_running_stats=True)], ids=str)
def test_instancenorm2d(kw):
    check_layer(lambda: nn.InstanceNorm2d(3, **kw), lambda: torch.nn.InstanceNorm2d(3, **kw), [rnd(2, 3, 4, 5)])


# -- embedding ---------------------------------------------------------------------------------------------
def test_embedding():
    idx = np.array([[0, 2, 4], [4, 3, 0]])
    check_layer(lambda: nn.Embedding(5, 3), lambda: torch.nn.Embedding(5, 3), [idx])
    check_layer(lambda: nn.Embedding(5, 3, padding_idx=0), lambda: torch.nn.Embedding(5, 3, padding_idx=0), [idx])
    m = nn.Embedding(5, 3, padding_idx=-1)
    assert m.padding_idx == 4 and not m.weight.data[4].any()
    assert repr(m) == repr(torch.nn.Embedding(5, 3, padding_idx=-1))


def test_embedding_from_pretrained():
    w = na.tensor(rnd(4, 2))
    m = nn.Embedding.from_pretrained(w)
    assert not m.weight.requires_grad and np.shares_memory(m.weight.data, w.data)
    out = m(na.tensor([3, 1]))
    np.testing.assert_array_equal(out.numpy(), w.numpy()[[3, 1]])
    m2 = nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    assert m2.weight.requires_grad and m2.padding_idx == 1


# -- activations, dropout, flatten -------------------------------------------------------------------------
ACTS = [
    ("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()), ("Tanh", ()), ("Sigmoid", ()), ("Softmax", (1,)),
    ("LogSoftmax", (-1,)), ("LeakyReLU", (0.2,)), ("ELU", (0.7,)), ("Mish", ()), ("Softplus", (2.0, 3.0)),
    ("Hardtanh", (-0.5, 0.8)), ("Hardswish", ()), ("ReLU6", ()), ("SELU", ()), ("GLU", (1,)), ("Identity", ()),
    ("Flatten", ()), ("Unflatten", (1, (2, 2))), ("LogSigmoid", ()), ("Softmin", (0,)), ("CELU", (1.3,)),
]


@pytest.mark.parametrize("name,args", ACTS, ids=[f"{a[0]}{a[1]}" for a in ACTS])
def test_activation_modules(name, args):
    x = rnd(3, 4, 2, scale=3.0)
    # NOTE: torch's CELU backward differs from the exact derivative by ~1e-8 relative in float64
    rtol = 1e-7 if name == "CELU" else None
    check_layer(lambda: getattr(nn, name)(*args), lambda: getattr(torch.nn, name)(*args), [x], rtol=rtol)
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_dropout_modules_follow_train_eval():
    for m, x in ((nn.Dropout(0.3), na.ones(200, 50)), (nn.Dropout2d(0.3), na.ones(200, 50, 2, 2))):
        y = m(x).numpy()
        kept = y != 0
        assert 0.6 < kept.mean() < 0.8 and np.allclose(y[kept], 1 / 0.7)
        if isinstance(m, nn.Dropout2d):  # whole channels dropped together
            assert (kept.all(axis=(2, 3)) | ~kept.any(axis=(2, 3))).all()
        m.eval()
        np.testing.assert_array_equal(m(x).numpy(), x.numpy())
    with pytest.raises(ConfigError, match="between 0 and 1"):
        nn.Dropout(1.5)


# -- losses ------------------------------------------------------------------------------------------------
def _probs(*shape, seed=3):
    return 1 / (1 + np.exp(-rnd(*shape, seed=seed)))


LOSSES = [
    ("CrossEntropyLoss", dict(), lambda: [rnd(4, 5), np.array([0, 4, 2, 1])]),
    ("CrossEntropyLoss", dict(label_smoothing=0.1, ignore_index=2, reduction="sum"),
     lambda: [rnd(4, 5), np.array([0, 4, 2, 1])]),
    ("NLLLoss", dict(reduction="none"), lambda: [rnd(4, 5), np.array([0, 4, 2, 1])]),
    ("MSELoss", dict(), lambda: [rnd(3, 4), rnd(3, 4, seed=2)]),
    ("L1Loss", dict(reduction="sum"), lambda: [rnd(3, 4), rnd(3, 4, seed=2)]),
    ("SmoothL1Loss", dict(beta=0.5), lambda: [rnd(3, 4), rnd(3, 4, seed=2)]),
    ("HuberLoss", dict(delta=0.7), lambda: [rnd(3, 4), rnd(3, 4, seed=2)]),
    ("BCELoss", dict(), lambda: [_probs(3, 4), _probs(3, 4, seed=5)]),
    ("BCEWithLogitsLoss", dict(), lambda: [rnd(3, 4), _probs(3, 4, seed=5)]),
    ("KLDivLoss", dict(reduction="batchmean"), lambda: [np.log(_probs(3, 4)), _probs(3, 4, seed=5)]),
]


@pytest.mark.parametrize("name,kw,make", LOSSES, ids=[f"{x[0]}{x[1]}" for x in LOSSES])
def test_loss_modules(name, kw, make):
    check_layer(lambda: getattr(nn, name)(**kw), lambda: getattr(torch.nn, name)(**kw), make())


def test_weighted_losses_keep_weight_as_buffer():
    w = rnd(5, seed=9) ** 2
    x, t = rnd(4, 5), np.array([0, 4, 2, 1])
    check_layer(lambda: nn.CrossEntropyLoss(weight=na.tensor(w)),
                lambda: torch.nn.CrossEntropyLoss(weight=torch.tensor(w)), [x, t])
    pw = rnd(4, seed=4) ** 2
    check_layer(lambda: nn.BCEWithLogitsLoss(pos_weight=na.tensor(pw)),
                lambda: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw)), [rnd(3, 4), _probs(3, 4)])
    assert list(nn.CrossEntropyLoss(weight=na.ones(3)).state_dict()) == ["weight"]


# -- default initialisation ---------------------------------------------------------------------------------
def test_linear_and_conv_init_bounds_follow_torch_formulas():
    na.manual_seed(0)
    lin = nn.Linear(300, 200)
    bound = 1 / math.sqrt(300)  # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound and abs(w.mean()) < 0.01 * bound
    assert np.abs(lin.bias.detach().numpy()).max() <= bound
    conv = nn.Conv2d(16, 32, 3)
    fan_in = 16 * 9
    assert np.abs(conv.weight.detach().numpy()).max() <= 1 / math.sqrt(fan_in)
    assert np.abs(conv.bias.detach().numpy()).max() <= 1 / math.sqrt(fan_in)
    convt = nn.ConvTranspose2d(16, 8, 3)  # torch computes fan_in from weight.shape[1] = out_channels
    assert np.abs(convt.bias.detach().numpy()).max() <= 1 / math.sqrt(8 * 9)
    assert np.abs(convt.bias.detach().numpy()).max() > 1 / math.sqrt(16 * 9)
    emb = nn.Embedding(1000, 64)
    assert abs(emb.weight.detach().numpy().std() - 1) < 0.02
    mha = nn.MultiheadAttention(32, 4)
    xav = math.sqrt(6 / (32 + 96))
    assert np.abs(mha.in_proj_weight.detach().numpy()).max() <= xav and not mha.in_proj_bias.detach().numpy().any()
    assert not mha.out_proj.bias.detach().numpy().any()
    bn = nn.BatchNorm2d(4)
    assert (bn.weight.detach().numpy() == 1).all() and (bn.running_var.numpy() == 1).all()


def test_init_is_seeded_and_dtype_respected():
    na.manual_seed(5)
    a = nn.Linear(4, 4).weight.detach().numpy().copy()
    na.manual_seed(5)
    b = nn.Linear(4, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)
    assert nn.Linear(2, 2, dtype=na.float64).weight.dtype == np.float64


def test_layer_errors():
    with pytest.raises(ConfigError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ConfigError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="bogus")
    with pytest.raises(ConfigError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ConfigError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


# -- attention and transformer -------------------------------------------------------------------------------
def _mask(m, val, like):
    """A mask for module ``m``'s framework: bool masks as they are, float masks in ``like``'s dtype."""
    if isinstance(m, torch.nn.Module):
        t = torch.tensor(val)
        return t.to(like.dtype) if t.is_floating_point() else t
    return na.tensor(val.astype(like.dtype) if val.dtype.kind == "f" else val)


def _bool_mask(shape, seed, p=0.3):
    m = np.random.default_rng(seed).random(shape) < p
    m[..., 0] = False  # never mask a whole row (softmax of all -inf is NaN in both)
    return m


MHA_CASES = [
    dict(kw=dict(), call=dict()),
    dict(kw=dict(batch_first=True), call=dict(average_attn_weights=False)),
    dict(kw=dict(batch_first=True), call=dict(need_weights=False)),
    dict(kw=dict(bias=False, add_bias_kv=True, add_zero_attn=True), call=dict()),
    dict(kw=dict(kdim=3, vdim=5, batch_first=True), call=dict(), cross=True),
    dict(kw=dict(batch_first=True), call=dict(), masks=True),
    dict(kw=dict(batch_first=True), call=dict(need_weights=False), masks=True),
    dict(kw=dict(add_bias_kv=True), call=dict(), masks=True),
]


@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: f"{c['kw']}{c['call']}{'masks' if c.get('masks') else ''}")
def test_multihead_attention(case):
    E, H, L, S, N = 8, 2, 4, 5, 3
    kw, call = case["kw"], case["call"]
    bf = kw.get("batch_first", False)
    shape = (lambda n, t, e: (n, t, e)) if bf else (lambda n, t, e: (t, n, e))
    q = rnd(*shape(N, L, E), seed=1)
    if case.get("cross"):
        k, v = rnd(*shape(N, S, 3), seed=2), rnd(*shape(N, S, 5), seed=3)
    else:
        k, v = rnd(*shape(N, S, E), seed=2), rnd(*shape(N, S, E), seed=3)
    extra = {}
    if case.get("masks"):
        extra = dict(key_padding_mask=_bool_mask((N, S), 4), attn_mask=_bool_mask((L, S), 5))

    def fwd(m, q, k, v):
        ex = {key: _mask(m, val, q) for key, val in extra.items()}
        out, w = m(q, k, v, **ex, **call)
        return out if w is None else (out, w)

    check_layer(lambda: nn.MultiheadAttention(E, H, **kw), lambda: torch.nn.MultiheadAttention(E, H, **kw),
                [q, k, v], call=lambda m, *x: fwd(m, *x)[0] if call.get("need_weights", True) is not False
                else fwd(m, *x), out_index=None if call.get("need_weights", True) is False else 0)
    if call.get("need_weights", True):
        check_layer(lambda: nn.MultiheadAttention(E, H, **kw), lambda: torch.nn.MultiheadAttention(E, H, **kw),
                    [q, k, v], call=fwd, out_index=1)


def test_multihead_attention_self_attention_mask_forms():
    """Bool and float masks, 2-D and 3-D attn_mask, unbatched input: all against torch."""
    E, H, L, N = 8, 2, 5, 2
    x = rnd(N, L, E)
    causal = np.triu(np.ones((L, L), dtype=bool), 1)
    three_d = _bool_mask((N * H, L, L), 7)
    for am in (causal, np.where(causal, -np.inf, 0.0), three_d):
        def fwd(m, x, am=am):
            return m(x, x, x, attn_mask=_mask(m, am, x), is_causal=am is causal)[0]

        check_layer(lambda: nn.MultiheadAttention(E, H, batch_first=True),
                    lambda: torch.nn.MultiheadAttention(E, H, batch_first=True), [x], call=fwd)
    check_layer(lambda: nn.MultiheadAttention(E, H), lambda: torch.nn.MultiheadAttention(E, H), [rnd(L, E)],
                call=lambda m, x: m(x, x, x)[0])


def test_multihead_attention_errors():
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    x = na.randn(2, 3, 8)
    with pytest.raises(ShapeError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=na.zeros(2, 4).bool())
    with pytest.raises(ShapeError, match="attn_mask"):
        m(x, x, x, attn_mask=na.zeros(3, 4))
    with pytest.raises(ConfigError, match="is_causal"):
        m(x, x, x, is_causal=True)
    with pytest.raises(ShapeError, match="embed_dim"):
        m(na.randn(2, 3, 4), x, x)
    assert list(m.state_dict()) == list(torch.nn.MultiheadAttention(8, 2).state_dict())


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True, activation="gelu"), dict(batch_first=True)], ids=str)
def test_transformer_encoder_layer(kw):
    d, h = 8, 2
    bf = kw.get("batch_first", False)
    x = rnd(3, 5, d) if bf else rnd(5, 3, d)
    kpm = _bool_mask((3, 5), 2)

    def fwd(m, x):
        T = torch.tensor if isinstance(m, torch.nn.Module) else na.tensor
        return m(x, src_key_padding_mask=T(kpm))

    make = lambda lib: lib.TransformerEncoderLayer(d, h, dim_feedforward=16, dropout=0.0, **kw)  # noqa: E731
    check_layer(lambda: make(nn), lambda: make(torch.nn), [x], call=fwd)


def test_transformer_encoder_stack_and_causal_mask():
    d, h, L = 8, 2, 5
    causal = np.triu(np.full((L, L), -np.inf), 1)

    def make(lib):
        layer = lib.TransformerEncoderLayer(d, h, dim_feedforward=12, dropout=0.0, batch_first=True)
        return lib.TransformerEncoder(layer, num_layers=2, norm=lib.LayerNorm(d), enable_nested_tensor=False)

    def fwd(m, x):
        return m(x, mask=_mask(m, causal, x), is_causal=True)

    check_layer(lambda: make(nn), lambda: make(torch.nn), [rnd(2, L, d)], call=fwd)
    assert list(make(nn).state_dict()) == list(make(torch.nn).state_dict())


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True, batch_first=True)], ids=str)
def test_transformer_decoder_layer(kw):
    d, h = 8, 2
    bf = kw.get("batch_first", False)
    tgt = rnd(2, 4, d) if bf else rnd(4, 2, d)
    mem = rnd(2, 6, d, seed=3) if bf else rnd(6, 2, d, seed=3)
    tgt_mask = np.triu(np.ones((4, 4), dtype=bool), 1)
    mkpm = _bool_mask((2, 6), 5)

    def fwd(m, t, mm):
        T = torch.tensor if isinstance(m, torch.nn.Module) else na.tensor
        return m(t, mm, tgt_mask=T(tgt_mask), memory_key_padding_mask=T(mkpm))

    make = lambda lib: lib.TransformerDecoderLayer(d, h, dim_feedforward=16, dropout=0.0, **kw)  # noqa: E731
    check_layer(lambda: make(nn), lambda: make(torch.nn), [tgt, mem], call=fwd)


def test_transformer_dropout_active_only_in_training():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5, batch_first=True)
    x = na.randn(2, 5, 8)
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
    layer.train()
    assert not np.allclose(layer(x).detach().numpy(), layer(x).detach().numpy())
