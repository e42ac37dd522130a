"""The functional additions of issue 25 (activations, losses, distances, spatial ops, conv3d, pools, LRN,
embedding_bag, CTC): parity with torch forward and backward in float64 and float32, and gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, ShapeError
from parity import check, gradcheck, rand_pos, randn


def _away(x, points=(0.0,), gap=0.05):
    """x moved off the kinks at ``points`` (where subgradients are conventions)."""
    for p in points:
        x = np.where(np.abs(x - p) < gap, p + gap * np.sign(x - p + 1e-12) * 2, x)
    return x


def _c(a, like):
    """A constant (no gradient) of ``like``'s dtype, as the torch side builds it."""
    return na.tensor(np.asarray(a).astype(like.data.dtype))


def _signs(*shape, seed=0):
    return np.where(np.random.default_rng(seed).random(shape) > 0.5, 1.0, -1.0)


X = _away(randn(3, 4, 5, seed=1) * 2, (0.0, 0.5, -0.5, 1.0))
A, P, N = randn(4, 6, seed=2), randn(4, 6, seed=3), randn(4, 6, seed=4)
Y = _signs(4, seed=5)
LABELS = (np.random.default_rng(6).random((4, 6)) > 0.5).astype(np.float64)
IMG = randn(2, 8, 4, 6, seed=7)
W6 = rand_pos(6, seed=11)

# name: (ours, torch, inputs)
CASES = {
    "threshold": (lambda x: F.threshold(x, 0.5, -2.0), lambda x: TF.threshold(x, 0.5, -2.0), [X]),
    "hardshrink": (F.hardshrink, TF.hardshrink, [X]),
    "softshrink": (lambda x: F.softshrink(x, 0.5), lambda x: TF.softshrink(x, 0.5), [X]),
    "tanhshrink": (F.tanhshrink, TF.tanhshrink, [X]),
    "softsign": (F.softsign, TF.softsign, [X]),
    "prelu_channels": (F.prelu, TF.prelu, [X, rand_pos(4, seed=8) / 4]),
    "prelu_one": (F.prelu, TF.prelu, [X, np.array([0.3])]),
    "rrelu_eval": (lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3), [X]),
    "pairwise_distance": (F.pairwise_distance, TF.pairwise_distance, [A, P]),
    "pairwise_distance_p1_keepdim": (lambda a, b: F.pairwise_distance(a, b, 1.0, keepdim=True),
                                     lambda a, b: TF.pairwise_distance(a, b, 1.0, keepdim=True), [A, P]),
    "pdist": (F.pdist, TF.pdist, [A]),
    "margin_ranking": (lambda a, b: F.margin_ranking_loss(a, b, _c(Y, a), 0.2),
                       lambda a, b: TF.margin_ranking_loss(a, b, torch.tensor(Y, dtype=a.dtype), 0.2),
                       [A[:, 0], P[:, 0]]),
    "hinge_embedding": (lambda x: F.hinge_embedding_loss(x, _c(_signs(4, 6, seed=9), x), reduction="sum"),
                        lambda x: TF.hinge_embedding_loss(x, torch.tensor(_signs(4, 6, seed=9), dtype=x.dtype),
                                                          reduction="sum"), [_away(A, (1.0,))]),
    "soft_margin": (lambda x: F.soft_margin_loss(x, _c(_signs(4, 6, seed=9), x)),
                    lambda x: TF.soft_margin_loss(x, torch.tensor(_signs(4, 6, seed=9), dtype=x.dtype)), [A]),
    "multilabel_soft_margin": (lambda x, w: F.multilabel_soft_margin_loss(x, _c(LABELS, x), w),
                               lambda x, w: TF.multilabel_soft_margin_loss(x, torch.tensor(LABELS, dtype=x.dtype), w),
                               [A, rand_pos(6, seed=10)]),
    "cosine_embedding": (lambda a, b: F.cosine_embedding_loss(a, b, _c(Y, a), 0.1, reduction="none"),
                         lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(Y, dtype=a.dtype), 0.1,
                                                               reduction="none"), [A, P]),
    "triplet_margin": (F.triplet_margin_loss, TF.triplet_margin_loss, [A, P, N]),
    "triplet_margin_swap_p1": (lambda a, p, n: F.triplet_margin_loss(a, p, n, 2.0, 1, swap=True, reduction="sum"),
                               lambda a, p, n: TF.triplet_margin_loss(a, p, n, 2.0, 1, swap=True, reduction="sum"),
                               [A, P, N]),
    "triplet_with_distance": (
        lambda a, p, n: F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda x, y: 1 - F.cosine_similarity(x, y)),
        lambda a, p, n: TF.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda x, y: 1 - TF.cosine_similarity(x, y)),
        [A, P, N]),
    "multi_margin": (lambda x: F.multi_margin_loss(x, na.tensor(np.array([0, 3, 5, 1])), 1, 0.8, _c(W6, x)),
                     lambda x: TF.multi_margin_loss(x, torch.tensor([0, 3, 5, 1]), 1, 0.8,
                                                    torch.tensor(W6, dtype=x.dtype)), [A]),
    "multi_margin_p2": (lambda x: F.multi_margin_loss(x, na.tensor(np.array([0, 3, 5, 1])), p=2, reduction="none"),
                        lambda x: TF.multi_margin_loss(x, torch.tensor([0, 3, 5, 1]), p=2, reduction="none"), [A]),
    "multilabel_margin": (
        lambda x: F.multilabel_margin_loss(x, na.tensor(np.array([[3, 0, -1, 1, 0, 0], [1, 2, 5, -1, 0, 0],
                                                                  [0, -1, 2, 2, 2, 2], [4, 5, 0, 1, 2, 3]]))),
        lambda x: TF.multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1, 0, 0], [1, 2, 5, -1, 0, 0],
                                                             [0, -1, 2, 2, 2, 2], [4, 5, 0, 1, 2, 3]])), [A]),
    "poisson_nll": (lambda x: F.poisson_nll_loss(x, _c(rand_pos(4, 6, seed=12) * 2, x), full=True),
                    lambda x: TF.poisson_nll_loss(x, torch.tensor(rand_pos(4, 6, seed=12) * 2, dtype=x.dtype),
                                                  full=True), [A]),
    "poisson_nll_rate": (lambda x: F.poisson_nll_loss(x, _c(rand_pos(4, 6, seed=12), x), log_input=False),
                         lambda x: TF.poisson_nll_loss(x, torch.tensor(rand_pos(4, 6, seed=12), dtype=x.dtype),
                                                       log_input=False), [rand_pos(4, 6, seed=13)]),
    "gaussian_nll": (lambda x, v: F.gaussian_nll_loss(x, _c(P, x), v, full=True),
                     lambda x, v: TF.gaussian_nll_loss(x, torch.tensor(P, dtype=x.dtype), v, full=True),
                     [A, rand_pos(4, 6, seed=14)]),
    "gaussian_nll_var_per_row": (lambda x, v: F.gaussian_nll_loss(x, _c(P, x), v, reduction="sum"),
                                 lambda x, v: TF.gaussian_nll_loss(x, torch.tensor(P, dtype=x.dtype), v,
                                                                   reduction="sum"),
                                 [A, rand_pos(4, 1, seed=15)]),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), lambda x: TF.pixel_shuffle(x, 2), [IMG]),
    "pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2), lambda x: TF.pixel_unshuffle(x, 2), [IMG]),
    "channel_shuffle": (lambda x: F.channel_shuffle(x, 4), lambda x: TF.channel_shuffle(x, 4), [IMG]),
    "affine_grid": (lambda t: F.affine_grid(t, (2, 3, 4, 5)), lambda t: TF.affine_grid(t, (2, 3, 4, 5), False),
                    [randn(2, 2, 3, seed=16)]),
    "affine_grid_3d_align": (lambda t: F.affine_grid(t, (2, 3, 3, 4, 5), True),
                             lambda t: TF.affine_grid(t, (2, 3, 3, 4, 5), True), [randn(2, 3, 4, seed=17)]),
    "grid_sample": (lambda x, g: F.grid_sample(x, g, align_corners=False),
                    lambda x, g: TF.grid_sample(x, g, align_corners=False), [IMG, randn(2, 3, 5, 2, seed=18) * 0.7]),
    "grid_sample_border_align": (lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True),
                                 lambda x, g: TF.grid_sample(x, g, padding_mode="border", align_corners=True),
                                 [IMG, randn(2, 3, 5, 2, seed=19)]),
    "grid_sample_nearest": (lambda x, g: F.grid_sample(x, g, mode="nearest", align_corners=False),
                            lambda x, g: TF.grid_sample(x, g, mode="nearest", align_corners=False),
                            [IMG, randn(2, 3, 5, 2, seed=20) * 0.7]),
    "conv3d": (lambda x, w, b: F.conv3d(x, w, b, stride=(2, 1, 1), padding=1),
               lambda x, w, b: TF.conv3d(x, w, b, stride=(2, 1, 1), padding=1),
               [randn(2, 4, 5, 4, 3, seed=21), randn(6, 4, 3, 2, 2, seed=22), randn(6, seed=23)]),
    "conv3d_groups_dilation_same": (lambda x, w: F.conv3d(x, w, None, 1, "same", (2, 1, 1), 2),
                                    lambda x, w: TF.conv3d(x, w, None, 1, "same", (2, 1, 1), 2),
                                    [randn(1, 4, 6, 4, 3, seed=24), randn(4, 2, 2, 3, 2, seed=25)]),
    "conv_transpose1d": (lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1),
                         lambda x, w, b: TF.conv_transpose1d(x, w, b, 2, 1, 1),
                         [randn(2, 4, 5, seed=26), randn(4, 3, 3, seed=27), randn(3, seed=28)]),
    "adaptive_avg_pool1d": (lambda x: F.adaptive_avg_pool1d(x, 3), lambda x: TF.adaptive_avg_pool1d(x, 3),
                            [randn(2, 3, 7, seed=29)]),
    "adaptive_max_pool1d": (lambda x: F.adaptive_max_pool1d(x, 3), lambda x: TF.adaptive_max_pool1d(x, 3),
                            [randn(2, 3, 7, seed=30)]),
    "lp_pool1d": (lambda x: F.lp_pool1d(x, 2, 3, 2), lambda x: TF.lp_pool1d(x, 2, 3, 2), [randn(2, 3, 8, seed=31)]),
    "lp_pool2d": (lambda x: F.lp_pool2d(x, 3, 2), lambda x: TF.lp_pool2d(x, 3, 2), [rand_pos(2, 3, 4, 6, seed=32)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, 0.1, 0.75, 2.0),
                            lambda x: TF.local_response_norm(x, 3, 0.1, 0.75, 2.0), [IMG]),
    "local_response_norm_even_3d": (lambda x: F.local_response_norm(x, 4), lambda x: TF.local_response_norm(x, 4),
                                    [randn(2, 6, 5, seed=33)]),
}

NO_GRADCHECK = {"grid_sample_nearest"}  # piecewise constant in the grid


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity(name):
    ours, ref, inputs = CASES[name]
    check(ours, inputs, torch_fn=ref)


@pytest.mark.parametrize("name", sorted(set(CASES) - NO_GRADCHECK))
def test_gradcheck(name):
    ours, _, inputs = CASES[name]
    assert gradcheck(lambda *a: ours(*a), inputs)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(mode):
    ids = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0])
    offsets = np.array([0, 2, 2, 6])  # bag 1 is empty
    weight = randn(10, 3, seed=34)
    check(lambda w: F.embedding_bag(na.tensor(ids), w, na.tensor(offsets), mode=mode, padding_idx=4),
          [weight], torch_fn=lambda w: TF.embedding_bag(torch.tensor(ids), w, torch.tensor(offsets), mode=mode,
                                                        padding_idx=4))
    bags = ids[:8].reshape(2, 4)
    check(lambda w: F.embedding_bag(na.tensor(bags), w, mode=mode), [weight],
          torch_fn=lambda w: TF.embedding_bag(torch.tensor(bags), w, mode=mode))


def test_embedding_bag_per_sample_weights():
    ids, offsets = np.array([1, 2, 4, 5, 4, 3]), np.array([0, 2])
    check(lambda w, s: F.embedding_bag(na.tensor(ids), w, na.tensor(offsets), mode="sum", per_sample_weights=s),
          [randn(10, 3, seed=35), randn(6, seed=36)],
          torch_fn=lambda w, s: TF.embedding_bag(torch.tensor(ids), w, torch.tensor(offsets), mode="sum",
                                                 per_sample_weights=s))
    with pytest.raises(ConfigError, match="per_sample_weights"):
        F.embedding_bag(na.tensor(ids), na.tensor(randn(10, 3)), na.tensor(offsets), per_sample_weights=na.ones(6))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_loss(reduction):
    T, Nb, C = 7, 3, 5
    logits = randn(T, Nb, C, seed=37)
    targets = np.array([[1, 2, 2], [3, 1, 0], [4, 4, 1]])
    in_len, tg_len = np.array([7, 6, 4]), np.array([3, 2, 2])
    check(lambda x: F.ctc_loss(F.log_softmax(x, -1), na.tensor(targets), na.tensor(in_len), na.tensor(tg_len),
                               reduction=reduction),
          [logits], torch_fn=lambda x: TF.ctc_loss(TF.log_softmax(x, -1), torch.tensor(targets), torch.tensor(in_len),
                                                   torch.tensor(tg_len), reduction=reduction))
    # the concatenated 1-d target form, blank elsewhere, and zero_infinity for an impossible alignment
    flat = np.array([1, 2, 2, 3, 1, 4, 4])
    check(lambda x: F.ctc_loss(F.log_softmax(x, -1), na.tensor(flat - 1), na.tensor(np.array([7, 6, 1])),
                               na.tensor(tg_len), blank=4, reduction=reduction, zero_infinity=True),
          [logits], torch_fn=lambda x: TF.ctc_loss(TF.log_softmax(x, -1), torch.tensor(flat - 1),
                                                   torch.tensor([7, 6, 1]), torch.tensor(tg_len), blank=4,
                                                   reduction=reduction, zero_infinity=True))


def test_ctc_gradcheck_through_log_softmax():
    targets, in_len, tg_len = np.array([[1, 2], [2, 2]]), np.array([5, 4]), np.array([2, 2])
    assert gradcheck(lambda x: F.ctc_loss(F.log_softmax(x, -1), targets, in_len, tg_len), [randn(5, 2, 4, seed=38)])


def test_gumbel_softmax():
    na.manual_seed(0)
    logits = na.tensor(randn(5, 4, seed=39), requires_grad=True)
    y = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(y.detach().numpy().sum(-1), 1.0)
    hard = F.gumbel_softmax(logits, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) <= {0.0, 1.0} and np.all(h.sum(-1) == 1)
    hard.sum().backward()  # straight-through: the soft sample's gradient (rows of a softmax sum to 0 here)
    np.testing.assert_allclose(logits.grad.numpy(), 0.0, atol=1e-12)
    # the frequencies follow softmax(logits)
    na.manual_seed(1)
    draws = F.gumbel_softmax(na.tensor(np.tile(np.log([[0.1, 0.2, 0.7]]), (20000, 1))), hard=True).numpy().mean(0)
    np.testing.assert_allclose(draws, [0.1, 0.2, 0.7], atol=0.02)


def test_alpha_dropout_formula_and_statistics():
    x = na.tensor(np.abs(randn(400, 50, seed=40)), requires_grad=True)  # kept values > 0 > the dropped value
    assert F.alpha_dropout(x, 0.2, training=False) is x
    na.manual_seed(0)
    y = F.alpha_dropout(x, 0.2, training=True)
    alpha = 1.7580993408473766
    a = 1 / np.sqrt((alpha ** 2 * 0.2 + 1) * 0.8)
    kept = np.isclose(y.detach().numpy(), a * x.detach().numpy() + alpha * a * 0.2)
    dropped = np.isclose(y.detach().numpy(), -alpha * a * 0.8)
    assert np.all(kept | dropped) and 0.15 < dropped.mean() < 0.25
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, a, 0.0))
    # SELU-normalised inputs keep mean 0 and variance 1
    z = F.alpha_dropout(na.tensor(np.random.default_rng(1).standard_normal(200000)), 0.3, training=True).numpy()
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.03
    f = F.feature_alpha_dropout(na.tensor(randn(8, 6, 5, seed=41)), 0.5, training=True).numpy()
    for n in range(8):
        for c in range(6):  # a whole channel is dropped or kept
            col = f[n, c]
            dropped_value = -alpha / np.sqrt((alpha ** 2 * 0.5 + 1) * 0.5) * 0.5
            assert np.allclose(col, dropped_value) or not np.any(np.isclose(col, dropped_value))


def test_rrelu_training_slopes_in_range():
    x = na.tensor(-np.ones((100, 10)))
    y = F.rrelu(x, 0.1, 0.3, training=True).numpy()
    assert y.min() >= -0.3 and y.max() <= -0.1 and y.std() > 0.03


def test_native_channel_shuffle_forward():  # torch has no backward for it
    check(lambda x: F.native_channel_shuffle(x, 2), [IMG], torch_fn=lambda x: TF.native_channel_shuffle(x, 2),
          grad=False)


def test_upsample_aliases_match_torch():
    x = randn(1, 2, 3, 4, seed=42)
    check(lambda t: F.upsample_bilinear(t, scale_factor=2), [x],
          torch_fn=lambda t: TF.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True))
    check(lambda t: F.upsample_nearest(t, size=(5, 7)), [x], torch_fn=lambda t: TF.interpolate(t, size=(5, 7)))
    check(lambda t: F.upsample(t, scale_factor=2, mode="bilinear"), [x],
          torch_fn=lambda t: TF.upsample(t, scale_factor=2, mode="bilinear"))


def test_errors_are_typed():
    with pytest.raises(ShapeError, match="pixel_shuffle"):
        F.pixel_shuffle(na.zeros(1, 3, 2, 2), 2)
    with pytest.raises(ConfigError, match="reflection"):
        F.grid_sample(na.zeros(1, 1, 2, 2), na.zeros(1, 2, 2, 2), padding_mode="reflection")
    with pytest.raises(ShapeError, match="weight"):
        F.prelu(na.zeros(2, 3, 4), na.ones(4))
    with pytest.raises(ConfigError, match="blank"):
        F.ctc_loss(na.zeros(3, 1, 4), np.array([[0, 1]]), [3], [2])
    with pytest.raises(ShapeError, match="conv3d"):
        F.conv3d(na.zeros(1, 2, 3, 3), na.zeros(1, 2, 1, 1, 1))
