"""Normalisation ops: parity with torch, gradcheck, running statistics, fused == composition, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, rand_pos, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, ShapeError


@pytest.mark.parametrize("shape,ns", [((4, 6), (6,)), ((2, 3, 5), (5,)), ((2, 3, 5), (3, 5)), ((7,), (7,))])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm(shape, ns, affine):
    x = randn(*shape, seed=1) * 3 + 1
    w = rand_pos(*ns, seed=2) if affine != "none" else None
    b = randn(*ns, seed=3) if affine == "both" else None
    inputs = [x] + [a for a in (w, b) if a is not None]

    def run(mod):
        def fn(x, *ab):
            wt = ab[0] if w is not None else None
            bt = ab[1] if b is not None else None
            return mod.layer_norm(x, ns, wt, bt, eps=1e-5)
        return fn

    check(run(F), inputs, torch_fn=run(TF))
    gradcheck(run(F), inputs)


@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("shape,ns", [((4, 6), (6,)), ((2, 3, 5), (3, 5))])
@pytest.mark.parametrize("weighted", [False, True])
def test_rms_norm(eps, shape, ns, weighted):
    x = randn(*shape, seed=4)
    inputs = [x] + ([rand_pos(*ns, seed=5)] if weighted else [])

    def run(mod):
        return lambda x, *w: mod.rms_norm(x, ns, w[0] if w else None, eps=eps)

    check(run(F), inputs, torch_fn=run(TF))
    gradcheck(run(F), inputs)


def test_rms_norm_eps_none_is_dtype_eps():
    x = np.full((2, 4), 1e-4, dtype=np.float32)  # mean(x^2) = 1e-8: the eps matters
    ours = F.rms_norm(na.tensor(x), (4,)).numpy()
    np.testing.assert_allclose(ours, TF.rms_norm(torch.tensor(x), (4,)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours, x / np.sqrt(1e-8 + np.finfo(np.float32).eps), rtol=1e-6)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(shape, training):
    c = shape[1]
    rm, rv = randn(c, seed=6), rand_pos(c, seed=7)

    def run(mod, lib):
        def fn(x, w, b):
            m = lib.tensor(rm.copy(), dtype=x.dtype)
            v = lib.tensor(rv.copy(), dtype=x.dtype)
            out = mod.batch_norm(x, m, v, w, b, training=training, momentum=0.3, eps=1e-4)
            return out, m, v  # the updated running statistics are compared too
        return fn

    check(run(F, na), [randn(*shape, seed=8) * 2 + 1, rand_pos(c, seed=9), randn(c, seed=10)],
          torch_fn=run(TF, torch))
    gradcheck(lambda x, w, b: run(F, na)(x, w, b)[0], [randn(*shape, seed=8), rand_pos(c, seed=9), randn(c, seed=10)])


def test_batch_norm_running_stats_in_place_and_unbiased():
    x = randn(5, 2, 3, seed=11)
    rm, rv = na.zeros(2, dtype=na.float64), na.ones(2, dtype=na.float64)
    before = rm.data
    F.batch_norm(na.tensor(x), rm, rv, training=True, momentum=0.1)
    assert rm.data is before  # updated in place
    flat = x.transpose(1, 0, 2).reshape(2, -1)
    np.testing.assert_allclose(rm.numpy(), 0.1 * flat.mean(1), rtol=1e-14)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * flat.var(1, ddof=1), rtol=1e-14)
    F.batch_norm(na.tensor(x), None, None, training=True)  # no running stats: fine in training


@pytest.mark.parametrize("shape,groups", [((2, 6, 4), 3), ((2, 4, 3, 3), 2), ((3, 4, 5), 4), ((2, 4, 5), 1)])
def test_group_norm(shape, groups):
    c = shape[1]
    inputs = [randn(*shape, seed=12) * 2, rand_pos(c, seed=13), randn(c, seed=14)]
    check(lambda x, w, b: F.group_norm(x, groups, w, b), inputs,
          torch_fn=lambda x, w, b: TF.group_norm(x, groups, w, b))
    gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), inputs)
    check(lambda x: F.group_norm(x, groups), inputs[:1], torch_fn=lambda x: TF.group_norm(x, groups))


@pytest.mark.parametrize("use_input_stats", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 4)])
def test_instance_norm(use_input_stats, shape):
    c = shape[1]
    rm, rv = randn(c, seed=15), rand_pos(c, seed=16)

    def run(mod, lib):
        def fn(x, w, b):
            m = lib.tensor(rm.copy(), dtype=x.dtype)
            v = lib.tensor(rv.copy(), dtype=x.dtype)
            return mod.instance_norm(x, m, v, w, b, use_input_stats=use_input_stats, momentum=0.2), m, v
        return fn

    inputs = [randn(*shape, seed=17) + 0.5, rand_pos(c, seed=18), randn(c, seed=19)]
    check(run(F, na), inputs, torch_fn=run(TF, torch))
    gradcheck(lambda x, w, b: run(F, na)(x, w, b)[0], inputs)
    check(lambda x: F.instance_norm(x), inputs[:1], torch_fn=lambda x: TF.instance_norm(x))


def test_fused_layer_norm_equals_composition():
    x, w, b = randn(3, 8, seed=20), rand_pos(8, seed=21), randn(8, seed=22)
    up = na.tensor(randn(3, 8, seed=23))
    ins1 = [na.tensor(a, requires_grad=True) for a in (x, w, b)]
    ins2 = [na.tensor(a, requires_grad=True) for a in (x, w, b)]
    y1 = F.layer_norm(ins1[0], (8,), ins1[1], ins1[2])
    xt, wt, bt = ins2
    mu = xt.mean(-1, keepdim=True)
    y2 = (xt - mu) / ((xt - mu).pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * wt + bt
    np.testing.assert_allclose(y1.detach().numpy(), y2.detach().numpy(), rtol=1e-12, atol=1e-13)
    y1.backward(up)
    y2.backward(up)
    for a, b_ in zip(ins1, ins2):
        np.testing.assert_allclose(a.grad.numpy(), b_.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    x = na.randn(2, 4, 3, requires_grad=True)
    for y in (F.layer_norm(x, (3,), na.ones(3), na.zeros(3)), F.rms_norm(x, (3,)), F.group_norm(x, 2),
              F.batch_norm(x, None, None, training=True), F.instance_norm(x)):
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32


def test_errors():
    x = na.randn(2, 4, 3)
    with pytest.raises(ShapeError, match="normalized_shape"):
        F.layer_norm(x, (4,))
    with pytest.raises(ShapeError, match="weight"):
        F.layer_norm(x, (3,), na.ones(4))
    with pytest.raises(ShapeError, match="normalized_shape"):
        F.rms_norm(x, (2, 3))
    with pytest.raises(ShapeError, match="num_groups"):
        F.group_norm(x, 3)
    with pytest.raises(ShapeError, match="running_mean"):
        F.batch_norm(x, na.zeros(3), na.ones(4), training=True)
    with pytest.raises(ShapeError, match="more than 1 value"):
        F.batch_norm(na.randn(1, 4), None, None, training=True)
    with pytest.raises(ConfigError, match="running"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ShapeError):
        F.batch_norm(na.randn(4), None, None, training=True)
