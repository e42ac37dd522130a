"""nn.utils.parametrize and the weight_norm / spectral_norm parametrizations (and the older
hook-based forms): torch's state-dict keys, a torch state dict loads, forward outputs and the
gradients of the original tensors match torch's, float64 and float32."""

import numpy as np
import pytest
import torch

import neural_arch as na
import neural_arch.nn as nn
from neural_arch.errors import ConfigError
from neural_arch.nn.utils import parametrizations as P
from neural_arch.nn.utils import parametrize

TOL = {np.float64: (1e-10, 1e-12), np.float32: (2e-5, 2e-6)}


def _pair(make_ours, make_torch, dtype, wrap_ours, wrap_torch):
    """The same layer in both frameworks, parametrized, with torch's state dict loaded into ours."""
    torch.manual_seed(0)
    ref = make_torch().to(torch.float64 if dtype == np.float64 else torch.float32)
    wrap_torch(ref)
    ours = make_ours()
    if dtype == np.float64:
        ours = ours.double()
    wrap_ours(ours)
    sd = ref.state_dict()
    assert list(ours.state_dict().keys()) == list(sd.keys())
    ours.load_state_dict({k: na.tensor(v.numpy().copy()) for k, v in sd.items()})
    return ours, ref


def _check(ours, ref, x, dtype, calls=3):
    rtol, atol = TOL[dtype]
    for k in range(calls):
        xo = na.tensor(x.astype(dtype))
        xt = torch.tensor(x.astype(dtype))
        yo, yt = ours(xo), ref(xt)
        np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"call {k}")
        g = np.linspace(-1, 1, yt.numel()).reshape(yt.shape).astype(dtype)
        ours.zero_grad()
        ref.zero_grad()
        yo.backward(na.tensor(g))
        yt.backward(torch.tensor(g))
        named_t = dict(ref.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad.data, named_t[name].grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"grad of {name} at call {k}")
        for name, b in ref.named_buffers():
            np.testing.assert_allclose(dict(ours.named_buffers())[name].data, b.numpy(), rtol=rtol, atol=atol)


LAYERS = {
    "linear": (lambda: nn.Linear(5, 4), lambda: torch.nn.Linear(5, 4), (3, 5)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3), lambda: torch.nn.Conv2d(2, 3, 3), (2, 2, 6, 6)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_parametrization_matches_torch(layer, dim, dtype):
    make_o, make_t, shape = LAYERS[layer]
    ours, ref = _pair(make_o, make_t, dtype, lambda m: P.weight_norm(m, dim=dim),
                      lambda m: torch.nn.utils.parametrizations.weight_norm(m, dim=dim))
    assert "parametrizations.weight.original0" in ours.state_dict()
    _check(ours, ref, np.random.default_rng(1).standard_normal(shape), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("n_iter", [1, 3])
def test_spectral_norm_parametrization_matches_torch(layer, n_iter, dtype):
    """Training mode advances the power iteration at each call (u, v compared after each); eval does not."""
    make_o, make_t, shape = LAYERS[layer]
    ours, ref = _pair(make_o, make_t, dtype, lambda m: P.spectral_norm(m, n_power_iterations=n_iter),
                      lambda m: torch.nn.utils.parametrizations.spectral_norm(m, n_power_iterations=n_iter))
    x = np.random.default_rng(2).standard_normal(shape)
    _check(ours, ref, x, dtype)
    ours.eval()
    ref.eval()
    _check(ours, ref, x, dtype, calls=2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_legacy_hook_forms_match_torch(dtype):
    ours, ref = _pair(lambda: nn.Linear(5, 4), lambda: torch.nn.Linear(5, 4), dtype,
                      lambda m: nn.utils.weight_norm(m), lambda m: torch.nn.utils.weight_norm(m))
    assert set(ours.state_dict()) == {"bias", "weight_g", "weight_v"}
    x = np.random.default_rng(3).standard_normal((3, 5))
    _check(ours, ref, x, dtype)
    nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(ref)
    np.testing.assert_allclose(ours.weight.data, ref.weight.detach().numpy(), rtol=TOL[dtype][0], atol=TOL[dtype][1])
    ours, ref = _pair(lambda: nn.Conv2d(2, 3, 3), lambda: torch.nn.Conv2d(2, 3, 3), dtype,
                      lambda m: nn.utils.spectral_norm(m, n_power_iterations=2),
                      lambda m: torch.nn.utils.spectral_norm(m, n_power_iterations=2))
    assert set(ours.state_dict()) == {"bias", "weight_orig", "weight_u", "weight_v"}
    _check(ours, ref, np.random.default_rng(4).standard_normal((1, 2, 5, 5)), dtype)
    nn.utils.remove_spectral_norm(ours)
    assert set(ours.state_dict()) == {"bias", "weight"}


class Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)

    def right_inverse(self, a):
        return a.triu()


class Scale(nn.Module):
    def forward(self, x):
        return x * 2.0

    def right_inverse(self, x):
        return x * 0.5


def test_register_chain_assign_and_remove():
    m = nn.Linear(3, 3)
    w0 = m.weight.data.copy()
    original = m.weight
    parametrize.register_parametrization(m, "weight", Symmetric())
    assert parametrize.is_parametrized(m, "weight") and not parametrize.is_parametrized(m, "bias")
    assert parametrize.type_before_parametrizations(m) is nn.Linear and isinstance(m, nn.Linear)
    assert m.parametrizations.weight.original is original  # the optimizer's Parameter object stays
    np.testing.assert_array_equal(m.weight.data, m.weight.data.T)
    np.testing.assert_array_equal(np.triu(m.weight.data), np.triu(w0))
    parametrize.register_parametrization(m, "weight", Scale())
    sym = np.triu(w0) + np.triu(w0, 1).T
    np.testing.assert_allclose(m.weight.data, 2 * sym)
    target = np.arange(9.0).reshape(3, 3).astype(np.float32)
    target = target + target.T
    m.weight = na.tensor(target)  # through both right_inverses
    np.testing.assert_allclose(m.weight.data, target)
    with parametrize.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and "parametrizations" not in m._modules
    np.testing.assert_allclose(m.weight.data, target)
    assert isinstance(m.weight, nn.Parameter)


def test_parametrized_weight_trains():
    m = nn.Linear(4, 2)
    P.weight_norm(m)
    opt = na.optim.SGD(m.parameters(), lr=0.1)
    x = na.randn(8, 4)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (m(x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="no parameter or buffer"):
        parametrize.register_parametrization(m, "nope", Scale())
    with pytest.raises(ConfigError, match="no parametrization"):
        parametrize.remove_parametrizations(m, "weight")
    with pytest.raises(ConfigError, match="not found"):
        nn.utils.remove_weight_norm(m)
    with pytest.raises(ConfigError, match="n_power_iterations"):
        P.spectral_norm(m, n_power_iterations=0)


def test_clip_grads_with_norm_matches_torch():
    rng = np.random.default_rng(5)
    gs = [rng.standard_normal(s) for s in [(3, 4), (5,)]]
    ours = [nn.Parameter(na.tensor(np.zeros(g.shape))) for g in gs]
    ref = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in gs]
    for p, r, g in zip(ours, ref, gs):
        p.grad, r.grad = na.tensor(g.copy()), torch.tensor(g.copy())
    total_o = nn.utils.get_total_norm([p.grad for p in ours])
    total_t = torch.nn.utils.get_total_norm([r.grad for r in ref])
    nn.utils.clip_grads_with_norm_(ours, 1.5, total_o)
    torch.nn.utils.clip_grads_with_norm_(ref, 1.5, total_t)
    for p, r in zip(ours, ref):
        np.testing.assert_allclose(p.grad.data, r.grad.numpy(), rtol=1e-12)
    assert nn.utils.clip_grad_norm(ours, 0.5).item() == pytest.approx(1.5, rel=1e-6)
