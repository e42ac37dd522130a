"""Losses: parity with torch (forward, backward, float64/float32), gradcheck, edge cases, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, rand_pos, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DataError, DTypeError, IndexingError, ShapeError


def _targets(shape, c, seed=0, ignore=None):
    t = np.random.default_rng(seed).integers(0, c, shape).astype(np.int64)
    if ignore is not None and t.size:
        t.flat[0] = ignore
    return t


REDUCTIONS = ["mean", "sum", "none"]


# -- cross entropy / nll ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 6), (2, 4, 3, 2), (4,)])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_class_targets(reduction, shape, smoothing, weighted):
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = _targets(tshape, c, seed=1, ignore=-100 if len(shape) > 1 else None)
    w = rand_pos(c, seed=3) if weighted else None

    def fn(x, t):
        wt = None if w is None else na.tensor(w, dtype=x.dtype)
        return F.cross_entropy(x, t, weight=wt, reduction=reduction, label_smoothing=smoothing)

    def ref(x, t):
        wt = None if w is None else torch.tensor(w, dtype=x.dtype)
        return TF.cross_entropy(x, t, weight=wt, reduction=reduction, label_smoothing=smoothing)

    check(fn, [randn(*shape, seed=2) * 2, t], torch_fn=ref)


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_ignore_index_custom(weighted):
    t = np.array([0, 3, 2, 3, 1])
    w = rand_pos(4, seed=4) if weighted else None
    for red in REDUCTIONS:
        check(lambda x: F.cross_entropy(x, na.tensor(t), weight=None if w is None else na.tensor(w),
                                        ignore_index=3, reduction=red, label_smoothing=0.1),
              [randn(5, 4, seed=5)],
              torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(t), weight=None if w is None else torch.tensor(
                  w, dtype=x.dtype), ignore_index=3, reduction=red, label_smoothing=0.1))


def test_cross_entropy_all_ignored_mean_is_nan_like_torch():
    x, t = randn(3, 4), np.full(3, -100)
    ours = F.cross_entropy(na.tensor(x), na.tensor(t)).item()
    ref = TF.cross_entropy(torch.tensor(x), torch.tensor(t)).item()
    assert np.isnan(ours) and np.isnan(ref)
    for dtype in (np.float32, np.float64):  # float32: the fused kernel, which counts the targets itself
        xa = na.tensor(x.astype(dtype), requires_grad=True)
        xt = torch.tensor(x.astype(dtype), requires_grad=True)
        loss = F.cross_entropy(xa, na.tensor(t))
        assert np.isnan(loss.item())
        loss.backward()
        TF.cross_entropy(xt, torch.tensor(t)).backward()
        np.testing.assert_array_equal(xa.grad.data, xt.grad.numpy())  # zeros in torch


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets(reduction, shape, smoothing):
    q = rand_pos(*shape, seed=6)
    q = q / q.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    w = rand_pos(shape[0] if len(shape) == 1 else shape[1], seed=7)
    check(lambda x, q, w: F.cross_entropy(x, q, weight=w, reduction=reduction, label_smoothing=smoothing),
          [randn(*shape, seed=8), q, w],
          torch_fn=lambda x, q, w: TF.cross_entropy(x, q, weight=w.detach(), reduction=reduction,
                                                    label_smoothing=smoothing))


def test_cross_entropy_gradcheck():
    t = _targets((4, 3), 5, seed=9, ignore=-100)
    w = rand_pos(5, seed=1)
    gradcheck(lambda x: F.cross_entropy(x, na.tensor(t), weight=na.tensor(w), label_smoothing=0.1),
              [randn(4, 5, 3, seed=2)])
    q = rand_pos(4, 5, seed=3)
    gradcheck(lambda x, q: F.cross_entropy(x, q, label_smoothing=0.2),
              [randn(4, 5, seed=4), q / q.sum(1, keepdims=True)])


def test_cross_entropy_large_logits_float32():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4 - 3], [-1e4, -1e4, -1e4]], dtype=np.float32)
    t = np.array([0, 2, 1])
    for red in REDUCTIONS:
        check(lambda a: F.cross_entropy(a, na.tensor(t), reduction=red, label_smoothing=0.1), [x],
              torch_fn=lambda a: TF.cross_entropy(a, torch.tensor(t), reduction=red, label_smoothing=0.1),
              dtypes=(np.float32,))
    out = F.cross_entropy(na.tensor(x), na.tensor(t), reduction="none")
    assert out.dtype == np.float32 and np.isfinite(out.numpy()).all()


def test_fused_cross_entropy_equals_composition():
    x, t = randn(6, 5, seed=3) * 3, _targets((6,), 5, seed=4)
    a, b = na.tensor(x, requires_grad=True), na.tensor(x, requires_grad=True)
    la = F.cross_entropy(a, na.tensor(t))
    lb = F.nll_loss(F.log_softmax(b, 1), na.tensor(t))
    lc = -(b - b.logsumexp(1, keepdim=True)).gather(1, na.tensor(t[:, None])).mean()
    np.testing.assert_allclose(la.item(), lb.item(), rtol=1e-14)
    np.testing.assert_allclose(la.item(), lc.item(), rtol=1e-14)
    la.backward()
    ga = a.grad.numpy().copy()
    lb.backward()
    np.testing.assert_allclose(ga, b.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)])
def test_nll_loss(reduction, shape):
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = _targets(tshape, c, seed=5, ignore=1 if len(shape) > 1 else None)
    check(lambda x, t, w: F.nll_loss(x, t, weight=w, ignore_index=1, reduction=reduction),
          [randn(*shape, seed=6), t, rand_pos(c, seed=7)],
          torch_fn=lambda x, t, w: TF.nll_loss(x, t, weight=w.detach(), ignore_index=1, reduction=reduction))
    gradcheck(lambda x: F.nll_loss(x, na.tensor(t), ignore_index=1, reduction=reduction), [randn(*shape, seed=6)])


def test_class_target_errors():
    x = na.randn(3, 4)
    with pytest.raises(IndexingError, match="target 7"):
        F.cross_entropy(x, na.tensor(np.array([0, 7, 1])))
    with pytest.raises(IndexingError, match="target -2"):
        F.nll_loss(x, na.tensor(np.array([0, -2, 1])))
    with pytest.raises(ShapeError, match="targets of shape"):
        F.cross_entropy(x, na.tensor(np.array([0, 1])))
    with pytest.raises(ShapeError, match="probability targets"):
        F.cross_entropy(x, na.rand(3, 5))
    with pytest.raises(ShapeError, match="weight"):
        F.cross_entropy(x, na.tensor(np.array([0, 1, 2])), weight=na.ones(3))
    with pytest.raises(ShapeError, match="0-d"):
        F.cross_entropy(na.tensor(1.0), na.tensor(np.array(0)))
    with pytest.raises(ConfigError, match="reduction"):
        F.cross_entropy(x, na.tensor(np.array([0, 1, 2])), reduction="avg")
    with pytest.raises(ConfigError, match="label_smoothing"):
        F.cross_entropy(x, na.tensor(np.array([0, 1, 2])), label_smoothing=1.5)
    with pytest.raises(DTypeError):
        F.nll_loss(x, na.tensor(np.array([0.0, 1.0, 2.0])))


def test_legacy_size_average_reduce():
    x, t = randn(4, 3), _targets((4,), 3)
    ours = F.cross_entropy(na.tensor(x), na.tensor(t), size_average=False).item()
    ref = TF.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="sum").item()
    np.testing.assert_allclose(ours, ref)


# -- regression losses --------------------------------------------------------------------------------------
REGRESSION = {
    "mse": (F.mse_loss, TF.mse_loss, {}),
    "l1": (F.l1_loss, TF.l1_loss, {}),
    "smooth_l1": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.7}),
    "smooth_l1_beta0": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.0}),
    "huber": (F.huber_loss, TF.huber_loss, {"delta": 0.8}),
}


@pytest.mark.parametrize("name", sorted(REGRESSION))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(name, reduction):
    ours, ref, kw = REGRESSION[name]
    x, y = randn(4, 5, seed=1), randn(4, 5, seed=2)
    check(lambda a, b: ours(a, b, reduction=reduction, **kw), [x, y],
          torch_fn=lambda a, b: ref(a, b, reduction=reduction, **kw))
    gradcheck(lambda a, b: ours(a, b, reduction=reduction, **kw), [x, y])


@pytest.mark.parametrize("name", ["mse", "l1", "huber"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_weighted(name, reduction):
    ours, ref, kw = REGRESSION[name]
    check(lambda a, b, w: ours(a, b, reduction=reduction, weight=w, **kw),
          [randn(3, 4, seed=1), randn(3, 4, seed=2), rand_pos(3, 4, seed=3)],
          torch_fn=lambda a, b, w: ref(a, b, reduction=reduction, weight=w, **kw))


def test_regression_broadcast_warns_like_torch():
    with pytest.warns(UserWarning):
        check(lambda a, b: F.mse_loss(a, b), [randn(3, 4), randn(4, seed=1)],
              torch_fn=lambda a, b: TF.mse_loss(a, b))
    with pytest.raises(ShapeError):
        F.mse_loss(na.randn(3, 4), na.randn(3))
    with pytest.raises(ConfigError):
        F.huber_loss(na.randn(3), na.randn(3), delta=0)


# -- binary cross entropy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    p = np.random.default_rng(1).uniform(0.05, 0.95, (4, 3))
    t = np.random.default_rng(2).uniform(0, 1, (4, 3))
    w = rand_pos(4, 3, seed=3)
    check(lambda a, b: F.binary_cross_entropy(a, b, weight=na.tensor(w, dtype=a.dtype), reduction=reduction),
          [p, t], torch_fn=lambda a, b: TF.binary_cross_entropy(a, b, weight=torch.tensor(w, dtype=a.dtype),
                                                                 reduction=reduction))
    gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), [p, t])


def test_binary_cross_entropy_clamps_logs_like_torch():
    p, t = np.array([0.0, 1.0, 0.5, 1e-50]), np.array([1.0, 0.0, 1.0, 1.0])
    # NOTE: torch clamps p (1 - p) at 1e-12 rounded to float32 even in float64 (4e-9 relative
    # off where the clamp is hit); ours uses 1e-12 exactly, hence rtol 1e-8 here.
    check(lambda a, b: F.binary_cross_entropy(a, b, reduction="none"), [p, t],
          torch_fn=lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"), dtypes=(np.float64,), rtol=1e-8)
    with pytest.raises(DataError, match="probabilities"):
        F.binary_cross_entropy(na.tensor([0.5, 1.5]), na.tensor([0.0, 1.0]))
    with pytest.raises(ShapeError):
        F.binary_cross_entropy(na.tensor([0.5, 0.5]), na.tensor([1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    x, t = randn(4, 3, seed=1) * 3, np.random.default_rng(2).uniform(0, 1, (4, 3))
    w = rand_pos(4, 3, seed=3)  # torch allows no gradient for weight
    pw = rand_pos(3, seed=4)  # nor for pos_weight (ours has one: gradcheck below)
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=na.tensor(w, dtype=a.dtype),
                                                          pos_weight=na.tensor(pw, dtype=a.dtype), reduction=reduction),
          [x, t],
          torch_fn=lambda a, b: TF.binary_cross_entropy_with_logits(a, b, weight=torch.tensor(w, dtype=a.dtype),
                                                                    pos_weight=torch.tensor(pw, dtype=a.dtype),
                                                                    reduction=reduction))
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), [x, t],
          torch_fn=lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction=reduction))
    gradcheck(lambda a, b, pw: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw, reduction=reduction),
              [x, t, rand_pos(3, seed=4)])


def test_bce_with_logits_large_logits_float32():
    x = np.array([1e4, -1e4, 50.0, -50.0], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"), [x, t],
          torch_fn=lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction="none"), dtypes=(np.float32,))


# -- kl_div ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = randn(4, 5, seed=1)
    logq = x - np.log(np.exp(x).sum(1, keepdims=True))
    p = rand_pos(4, 5, seed=2)
    p = p / p.sum(1, keepdims=True)
    tgt = np.log(p) if log_target else p

    def run(fn):
        return lambda a, b: fn(a, b, reduction=reduction, log_target=log_target)

    if reduction == "mean":
        with pytest.warns(UserWarning):  # torch warns that 'mean' is not the KL divergence
            check(run(F.kl_div), [logq, tgt], torch_fn=run(TF.kl_div))
    else:
        check(run(F.kl_div), [logq, tgt], torch_fn=run(TF.kl_div))
    gradcheck(run(F.kl_div), [logq, tgt])


def test_kl_div_zero_target_forward():
    x, p = randn(2, 3), np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    check(lambda a: F.kl_div(a, na.tensor(p, dtype=a.dtype), reduction="sum"), [x],
          torch_fn=lambda a: TF.kl_div(a, torch.tensor(p, dtype=a.dtype), reduction="sum"))


# -- cosine_similarity and normalize -------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,dim", [(((4, 5), (4, 5)), 1), (((3, 4, 5), (4, 5)), -1), (((2, 3), (1, 3)), 0)])
def test_cosine_similarity(shapes, dim):
    a, b = randn(*shapes[0], seed=1), randn(*shapes[1], seed=2)
    check(lambda x, y: F.cosine_similarity(x, y, dim=dim), [a, b],
          torch_fn=lambda x, y: TF.cosine_similarity(x, y, dim=dim))
    gradcheck(lambda x, y: F.cosine_similarity(x, y, dim=dim), [a, b])


def test_cosine_similarity_tiny_norm_like_torch():
    a, b = np.array([[1e-10, 0.0, 0.0], [1.0, 2.0, 3.0]]), randn(2, 3, seed=3)
    check(lambda x, y: F.cosine_similarity(x, y, dim=1, eps=1e-8), [a, b],
          torch_fn=lambda x, y: TF.cosine_similarity(x, y, dim=1, eps=1e-8), dtypes=(np.float64,))


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize(p, dim):
    x = randn(3, 4, seed=5)
    x[0] = 1e-14  # a row whose norm is below eps: the clamp matters
    check(lambda t: F.normalize(t, p=p, dim=dim), [x], torch_fn=lambda t: TF.normalize(t, p=p, dim=dim))
    gradcheck(lambda t: F.normalize(t, p=p, dim=dim), [randn(3, 4, seed=6)])
