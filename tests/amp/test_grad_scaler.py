"""GradScaler against torch.amp.GradScaler: the same gradients (with inf/NaN/overflow injected) give the
same scales, the same skipped steps and bit-identical parameters."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch import nn, optim
from neural_arch.amp import GradScaler
from neural_arch.errors import CheckpointError, ConfigError, GradientError

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
W0 = rng.normal(size=(3, 4)).astype(np.float32)
B0 = rng.normal(size=(4,)).astype(np.float32)


def coefficient_sequence(n=14):
    """Per step, the gradient of (w * c).sum() is c: finite, inf, NaN, and finite values that overflow
    float32 once scaled."""
    seq = []
    for k in range(n):
        c = rng.normal(size=(3, 4)).astype(np.float32)
        if k in (2, 9):
            c[1, 2] = np.inf
        if k == 5:
            c[0, 0] = np.nan
        if k == 11:
            c[2, 3] = 3e38  # finite, but not after scaling
        seq.append(c)
    return seq


def run_ours(seq, unscale_at=(), **kw):
    w, b = nn.Parameter(na.tensor(W0.copy())), nn.Parameter(na.tensor(B0.copy()))
    opt = optim.SGD([w, b], lr=0.1)
    scaler = GradScaler("cpu", **kw)
    scales, skipped, grads = [], [], []
    for k, c in enumerate(seq):
        opt.zero_grad()
        loss = (w * na.tensor(c)).sum() + b.sum()
        scaler.scale(loss).backward()
        if k in unscale_at:
            scaler.unscale_(opt)
        before = w.detach().numpy().copy()
        scaler.step(opt)
        skipped.append(bool(np.array_equal(before, w.detach().numpy())))
        grads.append(w.grad.numpy().copy())
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, skipped, grads, w.detach().numpy(), b.detach().numpy(), scaler


def run_torch(seq, unscale_at=(), **kw):
    w, b = torch.nn.Parameter(torch.tensor(W0.copy())), torch.nn.Parameter(torch.tensor(B0.copy()))
    opt = torch.optim.SGD([w, b], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", **kw)
    scales, skipped, grads = [], [], []
    for k, c in enumerate(seq):
        opt.zero_grad()
        loss = (w * torch.tensor(c)).sum() + b.sum()
        scaler.scale(loss).backward()
        if k in unscale_at:
            scaler.unscale_(opt)
        before = w.detach().numpy().copy()
        scaler.step(opt)
        skipped.append(bool(np.array_equal(before, w.detach().numpy())))
        grads.append(w.grad.numpy().copy())
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, skipped, grads, w.detach().numpy(), b.detach().numpy(), scaler


@pytest.mark.parametrize("kw", [dict(init_scale=2.0**16, growth_interval=3),
                                dict(init_scale=1000.0, growth_factor=3.0, backoff_factor=0.25, growth_interval=2)])
def test_same_scales_skips_and_parameters_as_torch(kw):
    seq = coefficient_sequence()
    s_a, k_a, g_a, w_a, b_a, ours = run_ours(seq, unscale_at=(1, 2, 7), **kw)
    s_b, k_b, g_b, w_b, b_b, theirs = run_torch(seq, unscale_at=(1, 2, 7), **kw)
    assert s_a == s_b
    assert k_a == k_b and sum(k_a) == 4  # steps 2, 5, 9, 11 skipped
    for k, (ga, gb) in enumerate(zip(g_a, g_b)):  # the unscaled gradients the optimizer saw: bit for bit
        assert np.array_equal(ga, gb, equal_nan=True), k
    # NOTE: torch's SGD rounds p - lr g once (a fused multiply-add), ours twice: an ulp apart after 10 steps
    np.testing.assert_allclose(w_a, w_b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b_a, b_b, rtol=1e-6, atol=1e-7)
    assert ours.state_dict() == theirs.state_dict()


def test_state_dict_round_trip_continues_the_same_sequence():
    seq = coefficient_sequence(8)
    first = run_ours(seq[:4], growth_interval=3)[-1]
    resumed = GradScaler(growth_interval=3)
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict() == first.state_dict()
    torch_scaler = torch.amp.GradScaler("cpu")
    torch_scaler.load_state_dict(first.state_dict())  # torch reads ours
    assert torch_scaler.state_dict() == first.state_dict()
    with pytest.raises(CheckpointError, match="saved from a disabled GradScaler"):
        GradScaler().load_state_dict({})


def test_disabled_scaler_is_the_plain_step():
    w = nn.Parameter(na.tensor(W0.copy()))
    opt = optim.SGD([w], lr=0.1)
    scaler = GradScaler(enabled=False)
    loss = (w * 2).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(opt)
    scaler.update()
    np.testing.assert_array_equal(w.detach().numpy(), W0 - np.float32(0.1) * 2)
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}


def test_misuse_is_a_typed_error():
    w = nn.Parameter(na.tensor(W0.copy()))
    opt = optim.SGD([w], lr=0.1)
    scaler = GradScaler()
    scaler.scale((w * 2).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(GradientError, match="already called on this optimizer"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(GradientError, match="already called since the last update"):
        scaler.step(opt)
    scaler.update()
    with pytest.raises(GradientError, match="no inf checks were recorded"):
        scaler.update()
    with pytest.raises(ConfigError, match="growth_factor must be > 1.0"):
        GradScaler(growth_factor=1.0)
    with pytest.raises(ConfigError, match="backoff_factor must be < 1.0"):
        GradScaler(backoff_factor=1.5)
