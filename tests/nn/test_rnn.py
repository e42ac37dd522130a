"""Recurrent layers: parity with torch (outputs, h_n, c_n and every gradient, float64 and float32),
torch state_dicts load strictly, packed sequences, cells, gradcheck of the ops, the kernels
against their NumPy twins, and typed errors."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch import nn
from neural_arch.backend import kernels
from neural_arch.backend.kernels import recurrent as rk
from neural_arch.errors import ConfigError, ShapeError
from neural_arch.nn.utils import rnn as rnn_utils
from neural_arch.ops.recurrent import gru_layer, lstm_layer, rnn_layer
from parity import TOL, assert_close, compare, gradcheck, randn, reference

DTYPES = {np.float64: torch.float64, np.float32: torch.float32}


def _pair(cls_name, dtype, *args, **kw):
    """A torch module and ours with the same weights (ours loaded from torch's state_dict, strict)."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls_name)(*args, **kw).to(DTYPES[dtype])
    ours = getattr(nn, cls_name)(*args, **kw, dtype=dtype)
    ours.load_state_dict({k: na.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}, strict=True)
    return ours, ref


def _flat(out):
    """A module's outputs as a flat list (output, h_n, c_n)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _compare(ours, ref, inputs, dtype, seed=0, rtol=None, atol=None):
    """Run both modules on ``inputs`` (NumPy; float ones get gradients), compare every output, the inputs'
    gradients and every parameter's gradient under a random upstream gradient."""
    r, a = TOL[dtype]
    r, a = rtol or r, atol or a
    na_in = [na.tensor(x.astype(dtype), requires_grad=True) for x in inputs]
    t_in = [torch.tensor(x.astype(dtype), requires_grad=True) for x in inputs]
    outs = _flat(ours(*_nest(na_in)))
    with reference():  # the torch layer: claimed for the parity record by the comparison below
        refs = _flat(ref(*_nest(t_in)))
    assert len(outs) == len(refs)
    rng = np.random.default_rng(seed)
    ups = [rng.standard_normal(t.shape).astype(dtype) for t in refs]
    for k, (o, t) in enumerate(zip(outs, refs)):
        compare(o, t, r, a, f"output {k}")
    torch.autograd.backward(refs, [torch.tensor(u) for u in ups])
    loss = (outs[0] * na.tensor(ups[0])).sum()
    for o, u in zip(outs[1:], ups[1:]):
        loss = loss + (o * na.tensor(u)).sum()
    loss.backward()
    for k, (x, xt) in enumerate(zip(na_in, t_in)):
        assert_close(x.grad.numpy(), xt.grad.numpy(), r, a * 10, f"grad of input {k}")
    named = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.numpy(), named[name].grad.numpy(), r, a * 10, f"grad of {name}")


def _nest(inputs):
    """(x,), (x, h0) or (x, (h0, c0)) from a flat list."""
    if len(inputs) == 3:
        return [inputs[0], (inputs[1], inputs[2])]
    return inputs


CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_parity_with_torch(cls, config, dtype):
    ours, ref = _pair(cls, dtype, 4, 5, **config)
    x = randn(6, 3, 4, seed=1)
    _compare(ours, ref, [x], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_parity_with_initial_state(cls, dtype):
    ours, ref = _pair(cls, dtype, 3, 4, num_layers=2, bidirectional=True)
    inputs = [randn(5, 2, 3, seed=2), randn(4, 2, 4, seed=3)]
    if cls == "LSTM":
        inputs.append(randn(4, 2, 4, seed=4))
    _compare(ours, ref, inputs, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", [dict(), dict(num_layers=2, bidirectional=True)], ids=str)
def test_lstm_proj_size(config, dtype):
    ours, ref = _pair("LSTM", dtype, 4, 6, proj_size=3, **config)
    D = 2 if config else 1
    L = config.get("num_layers", 1) * D
    _compare(ours, ref, [randn(5, 2, 4, seed=5), randn(L, 2, 3, seed=6), randn(L, 2, 6, seed=7)], dtype)


def test_rnn_relu_and_unbatched():
    ours, ref = _pair("RNN", np.float64, 3, 4, nonlinearity="relu", num_layers=2)
    _compare(ours, ref, [randn(5, 3, seed=8)], np.float64)
    _compare(ours, ref, [randn(5, 3, seed=8), randn(2, 4, seed=9)], np.float64)


def test_state_dict_keys_shapes_and_init_match_torch():
    ours = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    ref = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [tuple(v.shape) for v in ref.state_dict().values()]
    bound = 1 / np.sqrt(20)
    for p in ours.parameters():
        assert np.abs(p.detach().numpy()).max() <= bound
        assert p.detach().numpy().std() > bound / 3  # uniform, not zeros
    # and our state_dict loads into torch
    ref.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()}, strict=True)


@pytest.mark.parametrize("make", [
    lambda nn: nn.RNN(3, 4, 2, nonlinearity="relu", bias=False), lambda nn: nn.GRU(3, 4, bidirectional=True),
    lambda nn: nn.RNNCell(3, 4), lambda nn: nn.LSTMCell(3, 4), lambda nn: nn.GRUCell(3, 4, bias=False)])
def test_state_dict_names_and_shapes_of_every_layer(make):
    ours, ref = make(nn), make(torch.nn)
    assert isinstance(ours, (nn.RNNBase, nn.RNNCellBase))
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    ours.load_state_dict({k: na.tensor(v.numpy()) for k, v in ref.state_dict().items()}, strict=True)


def test_dropout_between_layers_only_in_training():
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = na.tensor(randn(5, 2, 3).astype(np.float32))
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    na.manual_seed(0)
    c, _ = m(x)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())


# -- packed sequences -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_input_matches_torch(cls, enforce_sorted, dtype):
    ours, ref = _pair(cls, dtype, 3, 4, num_layers=2, bidirectional=True)
    lengths = [5, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4]
    x = randn(4, 5, 3, seed=10)
    r, a = TOL[dtype]
    xn = na.tensor(x.astype(dtype), requires_grad=True)
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    pn = rnn_utils.pack_padded_sequence(xn, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    pt = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                                 enforce_sorted=enforce_sorted)
    assert_close(pn.data.detach().numpy(), pt.data.detach().numpy(), r, a, "packed data")
    assert_close(pn.batch_sizes.numpy(), pt.batch_sizes.numpy(), 0, 0, "batch_sizes")
    on, hn = ours(pn)
    ot, ht = ref(pt)
    assert isinstance(on, rnn_utils.PackedSequence)
    yn, ln = rnn_utils.pad_packed_sequence(on, batch_first=True)
    yt, lt = torch.nn.utils.rnn.pad_packed_sequence(ot, batch_first=True)
    assert_close(ln.numpy(), lt.numpy(), 0, 0, "lengths")
    outs, refs = [yn] + _flat(hn), [yt] + _flat(ht)
    rng = np.random.default_rng(0)
    loss_n = loss_t = 0
    for k, (o, t) in enumerate(zip(outs, refs)):
        assert_close(o.detach().numpy(), t.detach().numpy(), r, a, f"output {k}")
        u = rng.standard_normal(t.shape).astype(dtype)
        loss_n = loss_n + (o * na.tensor(u)).sum()
        loss_t = loss_t + (t * torch.tensor(u)).sum()
    loss_n.backward()
    loss_t.backward()
    assert_close(xn.grad.numpy(), xt.grad.numpy(), r, a * 10, "grad of x")
    named = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.numpy(), named[name].grad.numpy(), r, a * 10, f"grad of {name}")


def test_pad_sequence_pack_sequence_and_back():
    seqs = [randn(4, 2, seed=1), randn(2, 2, seed=2), randn(3, 2, seed=3)]
    for batch_first in (False, True):
        for side in ("right", "left"):
            ours = rnn_utils.pad_sequence([na.tensor(s) for s in seqs], batch_first, -1.0, side)
            ref = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first, -1.0, side)
            assert_close(ours.numpy(), ref.numpy(), 0, 0, "pad_sequence")
    packed = rnn_utils.pack_sequence([na.tensor(s) for s in seqs], enforce_sorted=False)
    ref = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    assert_close(packed.data.numpy(), ref.data.numpy(), 0, 0, "pack_sequence")
    assert_close(packed.sorted_indices.numpy(), ref.sorted_indices.numpy(), 0, 0, "sorted_indices")
    for got, want in zip(rnn_utils.unpack_sequence(packed), seqs):
        np.testing.assert_array_equal(got.numpy(), want)
    padded, lengths = rnn_utils.pad_packed_sequence(packed, total_length=6, padding_value=7.0)
    padded_t, _ = torch.nn.utils.rnn.pad_packed_sequence(ref, total_length=6, padding_value=7.0)
    assert_close(padded.numpy(), padded_t.numpy(), 0, 0, "total_length")
    assert lengths.numpy().tolist() == [4, 2, 3]


def test_pack_unsorted_with_enforce_sorted_is_a_clear_error():
    with pytest.raises(ConfigError, match="enforce_sorted=False"):
        rnn_utils.pack_padded_sequence(na.tensor(randn(3, 2, 1)), [1, 3])


# -- cells ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(cls, dtype):
    ours, ref = _pair(cls, dtype, 3, 4)
    inputs = [randn(2, 3, seed=11), randn(2, 4, seed=12)]
    if cls == "LSTMCell":
        inputs.append(randn(2, 4, seed=13))
    _compare(ours, ref, inputs, dtype)
    _compare(ours, ref, [randn(3, seed=14)], dtype)  # unbatched, zero state


def test_lstm_cell_loop_equals_lstm():
    """Stepping LSTMCell through a sequence gives nn.LSTM's outputs with the same weights."""
    lstm = nn.LSTM(3, 4, dtype=np.float64)
    cell = nn.LSTMCell(3, 4, dtype=np.float64)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = na.tensor(randn(5, 2, 3))
    y, (h, c) = lstm(x)
    hc = None
    for t in range(5):
        hc = cell(x[t], hc)
        np.testing.assert_allclose(hc[0].detach().numpy(), y[t].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hc[1].detach().numpy(), c[0].detach().numpy(), rtol=1e-12, atol=1e-14)


# -- the ops: gradcheck; the kernels against their twins --------------------------------------------------
def test_gradcheck_layer_ops():
    T, B, n_in, H = 3, 2, 2, 3
    lengths = (2, 1, 1)  # a packed batch: row 1 stops after the first step
    args = [randn(T, B, n_in, seed=1), randn(B, H, seed=2), randn(H, n_in, seed=3), randn(H, H, seed=4),
            randn(H, seed=5), randn(H, seed=6)]
    for nl in ("tanh", "relu"):
        for rev in (False, True):
            def rnn(*a, nl=nl, rev=rev):
                return (rnn_layer(*a, nonlinearity=nl, reverse=rev, batch_sizes=lengths)[0].sum()
                        + rnn_layer(*a, nonlinearity=nl, reverse=rev)[1].sum())
            assert gradcheck(rnn, args)
    g3 = [randn(3 * H, n_in, seed=7), randn(3 * H, H, seed=8), randn(3 * H, seed=9), randn(3 * H, seed=10)]
    for rev in (False, True):
        def gru(x, h, *w, rev=rev):
            return sum(t.sum() for t in gru_layer(x, h, *w, reverse=rev, batch_sizes=lengths))
        assert gradcheck(gru, args[:2] + g3)
    P = 2
    g4 = [randn(B, P, seed=11), randn(B, H, seed=12), randn(4 * H, n_in, seed=13), randn(4 * H, P, seed=14),
          randn(4 * H, seed=15), randn(4 * H, seed=16), randn(P, H, seed=17)]
    for rev in (False, True):
        def lstm(x, *a, rev=rev):
            return sum((t * t).sum() for t in lstm_layer(x, *a, reverse=rev, batch_sizes=lengths))
        assert gradcheck(lstm, args[:1] + g4)


@pytest.mark.skipif(not kernels.numba_installed(), reason="needs numba")
def test_kernels_equal_twins():
    rng = np.random.default_rng(0)
    B, H = 5, 7
    f = np.float32
    xg, hg = (rng.standard_normal((B, 4 * H)).astype(f) * 3 for _ in range(2))
    c_prev, dr, dc = (rng.standard_normal((B, H)).astype(f) for _ in range(3))
    outs = {}
    for flag in (True, False):
        with kernels.enabled(flag):
            gates, tanh_c, c, r = np.empty((B, 4 * H), f), np.empty((B, H), f), np.empty((B, H), f), np.empty((B, H), f)
            rk.lstm_step_forward(xg, hg, c_prev, gates, tanh_c, c, r)
            dg, dcp = np.empty_like(gates), np.empty_like(c)
            rk.lstm_step_backward(dr, dc, gates, c_prev, tanh_c, dg, dcp)
            g3, h = np.empty((B, 3 * H), f), np.empty((B, H), f)
            rk.gru_step_forward(xg[:, :3 * H], hg[:, :3 * H], c_prev, g3, h)
            dxg, dhg, dhp = np.empty_like(g3), np.empty_like(g3), np.empty_like(h)
            rk.gru_step_backward(dr, g3, hg[:, :3 * H], c_prev, dxg, dhg, dhp)
            outs[flag] = [gates, tanh_c, c, r, dg, dcp, g3, h, dxg, dhg, dhp]
    before = kernels.calls["lstm_step_forward"]
    with kernels.enabled(True):
        rk.lstm_step_forward(xg, hg, c_prev, *outs[True][:4])
    assert kernels.calls["lstm_step_forward"] == before + 1
    for k, (a, b) in enumerate(zip(outs[True], outs[False])):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6, err_msg=f"array {k}")


def test_errors_are_typed():
    with pytest.raises(ShapeError, match="input_size=4"):
        nn.LSTM(4, 5)(na.zeros(3, 2, 6))
    with pytest.raises(ShapeError, match="h0"):
        nn.GRU(4, 5)(na.zeros(3, 2, 4), na.zeros(2, 2, 5))
    with pytest.raises(ConfigError, match="proj_size"):
        nn.LSTM(4, 5, proj_size=5)
    with pytest.raises(ConfigError, match="nonlinearity"):
        nn.RNN(4, 5, nonlinearity="sigmoid")
    with pytest.raises(ShapeError, match="LSTMCell"):
        nn.LSTMCell(4, 5)(na.zeros(2, 3))


@pytest.mark.skipif(not kernels.numba_installed() or not kernels.active(), reason="needs the numba kernels")
def test_float32_layers_run_the_fused_step_kernels():
    """float32 runs the cell kernels: the GRU one call per time step, the LSTM its whole time loop in one
    call per layer-direction when BLAS's address is known (else, too, one step kernel call per step)."""
    names = ("lstm_step_forward", "lstm_step_backward", "gru_step_forward", "gru_step_backward",
             "lstm_sequence_forward", "lstm_sequence_backward")
    before = {k: kernels.calls[k] for k in names}
    for cls in (nn.LSTM, nn.GRU):
        y, _ = cls(3, 4)(na.tensor(randn(5, 2, 3).astype(np.float32), requires_grad=True))
        y.sum().backward()
    whole = bool(rk.sequence_gemm(np.float32))
    expected = {"gru_step_forward": 5, "gru_step_backward": 5,  # one per time step
                "lstm_step_forward": 0 if whole else 5, "lstm_step_backward": 0 if whole else 5,
                "lstm_sequence_forward": int(whole), "lstm_sequence_backward": int(whole)}
    for name, count in expected.items():
        assert kernels.calls[name] == before[name] + count, name


@pytest.mark.skipif(not kernels.numba_installed() or not rk.sequence_gemm(np.float32),
                    reason="needs numba and BLAS's cblas_sgemm address")
@pytest.mark.parametrize("config", [dict(num_layers=2, bidirectional=True), dict(proj_size=3)], ids=str)
def test_lstm_whole_loop_equals_the_python_loop(monkeypatch, config):
    """The one-call time loop (float32) computes what the step-by-step Python loop computes, packed
    batches and projections included: the same products and the same cell arithmetic. (Without BLAS's
    address, here by the policy that hides it, the Python loop runs.)"""
    from neural_arch.backend import threads

    rng = np.random.default_rng(0)
    lengths = [6, 4, 4, 1]
    xs = [na.tensor(rng.standard_normal((n, 5)).astype(np.float32)) for n in lengths]
    na.manual_seed(0)
    layer = nn.LSTM(5, 7, **config)
    runs = []
    for whole in (True, False):
        if not whole:
            monkeypatch.setattr(threads.policy, "gemm_in_poll", False)
        assert bool(rk.sequence_gemm(np.float32)) == whole
        layer.zero_grad()
        packed = rnn_utils.pack_sequence(xs)
        y, (h, c) = layer(packed)
        out, _ = rnn_utils.pad_packed_sequence(y)
        ((out * out).sum() + (h * h).sum() + (c * c).sum()).backward()
        runs.append([out.detach().numpy(), h.detach().numpy(), c.detach().numpy()]
                    + [p.grad.numpy() for p in layer.parameters()])
    for k, (a, b) in enumerate(zip(*runs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"array {k}")


@pytest.mark.parametrize("give_up_s", [1.0, 0.0], ids=["split", "gives-up-after-one-step"])
def test_split_step_products_give_the_unsplit_results(monkeypatch, give_up_s):
    """ops.recurrent.STEP_SPLIT_FLOPS cuts the per-step products into column blocks over the threads (and
    STEP_SPLIT_GIVE_UP_S = 0 stops that after the first step): outputs and gradients stay the unsplit ones."""
    from neural_arch.backend import threads
    from neural_arch.ops import recurrent

    monkeypatch.setattr(threads.policy, "num_threads", 2)
    x = randn(6, 4, 8)
    for cls in (nn.LSTM, nn.GRU, nn.RNN):
        na.manual_seed(0)
        layer = cls(8, 40, num_layers=2, bidirectional=True, dtype=np.float64)  # W_hh: 40 columns, cut at 16
        runs = []
        for split in (None, 0):
            monkeypatch.setattr(recurrent, "STEP_SPLIT_FLOPS", split)
            monkeypatch.setattr(recurrent, "STEP_SPLIT_GIVE_UP_S", give_up_s)
            layer.zero_grad()
            xt = na.tensor(x, requires_grad=True)
            y, _ = layer(xt)
            (y * y).sum().backward()
            runs.append([y.detach().numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
        for k, (a, b) in enumerate(zip(*runs)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{cls.__name__} array {k}")


def _node_names(t) -> set:
    """The names of the ops in ``t``'s autograd graph."""
    seen, todo = {}, [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and not isinstance(node, na.Tensor) and id(node) not in seen:
            seen[id(node)] = type(node).__name__
            todo.extend(node.parents)
    return set(seen.values())


@pytest.mark.skipif(not kernels.numba_installed() or not rk.sequence_gemm(np.float32),
                    reason="needs numba and BLAS's cblas_sgemm address")
def test_lstm_wavefront_equals_the_per_layer_ops(monkeypatch):
    """At two threads, a float32 nn.LSTM runs each pair of layers as one wavefront op (ops/recurrent_wave.py):
    the same steps as one lstm_layer per layer, but each chunk's input projection is its own product, the
    second layer's weight gradients are summed chunk by chunk, and the first layer's gradients (and the
    input's) go through dL/dy1 computed per chunk: everything agrees to float32 rounding. (The outputs were
    once pinned bit for bit; on an AMD EPYC host they differ in the last bit, at main too, cause not found.)
    Three layers: a pair, then one layer on its own; 17 steps: an uneven last chunk."""
    from neural_arch.backend import threads
    from neural_arch.ops import recurrent_wave

    monkeypatch.setattr(threads.policy, "num_threads", 2)
    if not threads.blas_is_ours():
        pytest.skip("the wavefront needs our pool to drive BLAS")
    T, B, n_in, H, L = 17, 4, 6, 9, 3
    assert T % recurrent_wave.CHUNK_STEPS and T > 2 * recurrent_wave.CHUNK_STEPS
    rng = np.random.default_rng(0)
    x, h0, c0 = (rng.standard_normal(s).astype(np.float32) for s in ((T, B, n_in), (L, B, H), (L, B, H)))
    na.manual_seed(0)
    layer = nn.LSTM(n_in, H, num_layers=L)
    runs = []
    for wave in (True, False):
        layer.zero_grad()
        xt, ht, ct = (na.tensor(a, requires_grad=True) for a in (x, h0, c0))
        if wave:
            y, (h, c) = layer(xt, (ht, ct))
            assert "LSTMPairLayer" in _node_names(y)
        else:  # the per-layer ops, as the module runs them without the wavefront
            y, hs, cs = xt, [], []
            for k in range(L):
                w = [getattr(layer, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                y, hk, ck = lstm_layer(y, ht[k], ct[k], *w)
                hs.append(hk)
                cs.append(ck)
            h, c = na.stack(hs, 0), na.stack(cs, 0)
            assert "LSTMPairLayer" not in _node_names(y)
        ((y * y).sum() + (h * h).sum() + (c * c).sum()).backward()
        runs.append({"y": y.detach().numpy(), "h_n": h.detach().numpy(), "c_n": c.detach().numpy(),
                     "dx": xt.grad.numpy(),
                     "dh0": ht.grad.numpy(), "dc0": ct.grad.numpy(),
                     **{n: p.grad.numpy() for n, p in layer.named_parameters()}})
    wave, per_layer = runs
    for name in wave:
        np.testing.assert_allclose(wave[name], per_layer[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.skipif(not kernels.numba_installed() or not rk.sequence_gemm(np.float32),
                    reason="needs numba and BLAS's cblas_sgemm address")
def test_lstm_wavefront_parity_with_torch(monkeypatch):
    """The wavefront op against torch's LSTM (outputs, states, every gradient), float32, with initial states."""
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "num_threads", 2)
    ours, ref = _pair("LSTM", np.float32, 5, 6, num_layers=2)
    inputs = [randn(16, 3, 5, seed=5), randn(2, 3, 6, seed=6), randn(2, 3, 6, seed=7)]
    _compare(ours, ref, inputs, np.float32)


@pytest.mark.skipif(not kernels.numba_installed() or not rk.sequence_gemm(np.float32),
                    reason="needs numba and BLAS's cblas_sgemm address")
def test_lstm_wavefront_gradients_do_not_depend_on_the_threads(monkeypatch):
    """The wavefront's second-layer weight gradients are summed chunk by chunk by whichever thread is free
    (recurrent_wave._Fill): the order of the sums is fixed, so repeated backwards give the same bits, with
    and without dL/dx (which changes the layer-1 jobs, so which thread takes which product)."""
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "num_threads", 2)
    if not threads.blas_is_ours():
        pytest.skip("the wavefront needs our pool to drive BLAS")
    na.manual_seed(3)
    layer = nn.LSTM(8, 16, num_layers=2)
    x = np.random.default_rng(1).standard_normal((30, 5, 8)).astype(np.float32)
    for needs_x in (False, True):
        runs = []
        for _ in range(4):
            layer.zero_grad()
            xt = na.tensor(x, requires_grad=needs_x)
            y, _ = layer(xt)
            assert "LSTMPairLayer" in _node_names(y)
            (y * y).sum().backward()
            runs.append({n: p.grad.numpy().copy() for n, p in layer.named_parameters()})
        for run in runs[1:]:
            for name, grad in run.items():
                np.testing.assert_array_equal(grad, runs[0][name], err_msg=name)


def test_add_product_accumulates_in_place():
    """recurrent_sequence.add_product: out += a @ b through BLAS with beta = 1, reading a transposed view and
    rows with a stride in place (the wavefront's weight gradients), and False for an out it cannot write."""
    if not kernels.numba_installed() or not rk.sequence_gemm(np.float32):
        pytest.skip("needs numba and BLAS's cblas_sgemm address")
    from neural_arch.backend.kernels import recurrent_sequence

    rng = np.random.default_rng(4)
    d = rng.standard_normal((21, 12)).astype(np.float32)
    xh = rng.standard_normal((21, 10)).astype(np.float32)
    out = rng.standard_normal((12, 4)).astype(np.float32)
    expected = out.astype(np.float64) + d.T.astype(np.float64) @ xh[:, 6:]
    assert recurrent_sequence.add_product(rk.sequence_gemm(np.float32), d.T, xh[:, 6:], out)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    column_major = np.zeros((4, 12), np.float32).T
    assert not recurrent_sequence.add_product(rk.sequence_gemm(np.float32), d.T, xh[:, 6:], column_major)
    assert not column_major.any()


def _pair_args(T, B, n_in, H, seed=20):
    """x, h1_0, c1_0, h2_0, c2_0 and two layers' (w_ih, w_hh, b_ih, b_hh) for ``lstm_pair``."""
    shapes = [(T, B, n_in), (B, H), (B, H), (B, H), (B, H), (4 * H, n_in), (4 * H, H), (4 * H,), (4 * H,),
              (4 * H, H), (4 * H, H), (4 * H,), (4 * H,)]
    return [randn(*s, seed=seed + k) * (0.5 if k >= 5 else 1) for k, s in enumerate(shapes)]


def _lstm_pair_flat(x, h1, c1, h2, c2, *w):
    from neural_arch.ops.recurrent_wave import lstm_pair

    y, (h1n, c1n), (h2n, c2n) = lstm_pair(x, (h1, c1), (h2, c2), w[:4], w[4:])
    return [y, h1n, c1n, h2n, c2n]


@pytest.mark.parametrize("T", [2, 10, 18])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_pair_op_parity_with_torch(dtype, T):
    """The op itself (any dtype; float64 runs its Python loop) against torch's two-layer LSTM, gradients included;
    T = 2 is shorter than a chunk, 10 a short first chunk and one more, 18 ends with a chunk of one step."""
    args = [a.astype(dtype) for a in _pair_args(T, 3, 4, 5)]
    ref = torch.nn.LSTM(4, 5, num_layers=2).to(DTYPES[dtype])
    with torch.no_grad():
        for k, name in enumerate(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                  "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"]):
            getattr(ref, name).copy_(torch.tensor(args[5 + k]))
    ours_in = [na.tensor(a, requires_grad=True) for a in args]
    t_in = [torch.tensor(a, requires_grad=True) for a in args[:5]]
    outs = _lstm_pair_flat(*ours_in)
    with reference():
        y, (h, c) = ref(t_in[0], (torch.stack([t_in[1], t_in[3]]), torch.stack([t_in[2], t_in[4]])))
    refs = [y, h[0], c[0], h[1], c[1]]
    r, a = TOL[dtype]
    rng = np.random.default_rng(1)
    ups = [rng.standard_normal(t.shape).astype(dtype) for t in refs]
    for k, (o, t) in enumerate(zip(outs, refs)):
        compare(o, t, r, a, f"output {k}")
    torch.autograd.backward(refs, [torch.tensor(u) for u in ups])
    sum((o * na.tensor(u)).sum() for o, u in zip(outs, ups)).backward()
    ref_grads = [t.grad for t in t_in] + [p.grad for p in ref.parameters()]
    for k, (x, g) in enumerate(zip(ours_in, ref_grads)):
        assert_close(x.grad.numpy(), g.numpy(), r, a * 10, f"grad of input {k}")


def test_gradcheck_lstm_pair():
    assert gradcheck(lambda *a: sum((t * t).sum() for t in _lstm_pair_flat(*a)), _pair_args(9, 2, 2, 3))
