"""nn.init (gains vs torch, distribution statistics, seeding, errors), nn.utils gradient clipping
(vs torch, incl. inf norm and float32), Parameter basics."""

import math

import numpy as np
import pytest
import torch

import neural_arch as na
import neural_arch.nn as nn
from neural_arch.errors import ConfigError, NumericalError, ShapeError
from neural_arch.nn import init


@pytest.mark.parametrize("args", [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",),
                                  ("leaky_relu", 0.2), ("selu",)])
def test_calculate_gain_matches_torch(args):
    assert init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)


def test_calculate_gain_errors():
    with pytest.raises(ConfigError, match="unsupported"):
        init.calculate_gain("swish")
    with pytest.raises(ConfigError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "x")


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3), (40, 30, 5)])
def test_fans_match_torch(shape):
    t = torch.empty(shape)
    assert init._calculate_fan_in_and_fan_out(na.empty(*shape)) == torch.nn.init._calculate_fan_in_and_fan_out(t)


def _stats(fn, shape=(400, 300), **kw):
    na.manual_seed(0)
    t = na.empty(*shape)
    out = fn(t, **kw)
    assert out is t
    return t.numpy()


def test_distributions():
    fan_in, fan_out = 300, 400
    x = _stats(init.uniform_, a=-2.0, b=3.0)
    assert x.min() >= -2 and x.max() < 3 and abs(x.mean() - 0.5) < 0.02
    x = _stats(init.normal_, mean=1.0, std=2.0)
    assert abs(x.mean() - 1) < 0.02 and abs(x.std() - 2) < 0.02
    x = _stats(init.xavier_uniform_, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(x).max() <= bound and np.abs(x).max() > 0.99 * bound
    x = _stats(init.xavier_normal_)
    assert abs(x.std() - math.sqrt(2 / (fan_in + fan_out))) < 0.01 * math.sqrt(2 / (fan_in + fan_out)) * 3
    x = _stats(init.kaiming_uniform_, a=0, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert np.abs(x).max() <= bound and np.abs(x).max() > 0.99 * bound
    x = _stats(init.kaiming_normal_, mode="fan_out", nonlinearity="relu")
    assert abs(x.std() - math.sqrt(2 / fan_out)) < 0.02 * math.sqrt(2 / fan_out)
    x = _stats(init.trunc_normal_, std=1.0, a=-1.0, b=0.5)
    assert x.min() >= -1 and x.max() <= 0.5
    # mean of N(0,1) truncated to [-1, 0.5]: (phi(-1) - phi(0.5)) / (Phi(0.5) - Phi(-1))
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    assert abs(x.mean() - (phi(-1) - phi(0.5)) / (Phi(0.5) - Phi(-1))) < 0.01
    x = _stats(init.constant_, val=0.25)
    assert (x == 0.25).all()
    assert (_stats(init.zeros_) == 0).all() and (_stats(init.ones_) == 1).all()
    np.testing.assert_array_equal(_stats(init.eye_, shape=(3, 4)), np.eye(3, 4))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (8, 2, 3)])
def test_orthogonal(shape):
    x = _stats(init.orthogonal_, shape=shape, gain=1.5).reshape(shape[0], -1)
    rows, cols = x.shape
    gram = x @ x.T if rows <= cols else x.T @ x
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(min(rows, cols)), atol=1e-5)


def test_dirac_matches_torch():
    t = torch.empty(4, 2, 3, 3)
    torch.nn.init.dirac_(t)
    np.testing.assert_array_equal(init.dirac_(na.empty(4, 2, 3, 3)).numpy(), t.numpy())


def test_init_seeded_generator_and_dtype():
    a = init.normal_(na.empty(5, dtype=na.float64), generator=na.Generator(3)).numpy()
    b = init.normal_(na.empty(5, dtype=na.float64), generator=na.Generator(3)).numpy()
    np.testing.assert_array_equal(a, b)
    assert init.uniform_(na.empty(3, dtype=na.float64)).dtype == np.float64


def test_init_on_parameter_records_no_graph():
    p = nn.Parameter(na.empty(3, 4))
    init.kaiming_uniform_(p)
    assert p.is_leaf and p.grad_fn is None and p.requires_grad


def test_init_errors():
    with pytest.raises(ShapeError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(na.empty(5))
    with pytest.raises(ConfigError, match="fan_in, fan_out"):
        init.kaiming_normal_(na.empty(3, 3), mode="fan_avg")
    with pytest.raises(ConfigError, match="a < b"):
        init.trunc_normal_(na.empty(3), a=1.0, b=0.0)


# -- clipping ----------------------------------------------------------------------------------------------
def _with_grads(dtype, scale):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s) * scale for s in [(3, 4), (5,), (2, 2, 2)]]
    ours = [nn.Parameter(na.zeros(*g.shape, dtype=dtype)) for g in grads]
    ref = [torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True) for g in grads]
    for p, t, g in zip(ours, ref, grads):
        p.grad = na.tensor(g.astype(dtype))
        t.grad = torch.tensor(g.astype(dtype))
    return ours, ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    ours, ref = _with_grads(dtype, 2.0)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert total.dtype == dtype
    np.testing.assert_allclose(total.numpy(), t_total.numpy(), rtol=rtol)
    for p, t in zip(ours, ref):
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=1e-7)


def test_clip_grad_norm_edge_cases():
    p = nn.Parameter(na.ones(2))
    assert float(nn.utils.clip_grad_norm_([p], 1.0)) == 0.0  # no grads: norm 0, nothing to do
    p.grad = na.tensor([np.inf, 1.0])
    with pytest.raises(NumericalError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch():
    ours, ref = _with_grads(np.float32, 2.0)
    nn.utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(ref, 0.7)
    for p, t in zip(ours, ref):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    with pytest.raises(ConfigError):
        nn.utils.clip_grad_value_(ours, -1)


def test_parameters_to_vector_round_trip():
    m = nn.Linear(3, 2)
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (8,)
    nn.utils.vector_to_parameters(v * 2, m.parameters())
    np.testing.assert_allclose(nn.utils.parameters_to_vector(m.parameters()).numpy(), v.numpy() * 2)


# -- Parameter ---------------------------------------------------------------------------------------------
def test_parameter_is_a_leaf_tensor_and_ops_return_tensors():
    p = nn.Parameter(na.tensor([1.0, 2.0]))
    assert isinstance(p, na.Tensor) and p.is_leaf and p.requires_grad
    assert type(p).__slots__ == ()  # no extra per-instance memory; Tensor's fast paths untouched
    y = p * 2
    assert type(y) is na.Tensor and y.grad_fn is not None
    frozen = nn.Parameter(na.ones(2), requires_grad=False)
    assert not frozen.requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert nn.Parameter().shape == (0,)
