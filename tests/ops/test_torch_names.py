"""torch's top-level names added with the coverage stream (ops/torch_names.py, the constants, dtypes and rng
state at the root), each against torch: the same code runs with ``m`` = neural_arch and ``m`` = torch."""

import contextlib
import math
import pickle

import numpy as np
import pytest
import torch
from parity import check, compare, gradcheck, rand_pos, randn, reference

import neural_arch as na
from neural_arch.errors import ConfigError, DTypeError, IndexingError, ShapeError

A, B = randn(3, 4, seed=1), randn(3, 4, seed=2)
V = randn(4, seed=3)
SIGN = np.array([1.0, -1.0, 1.0])
IMG = randn(2, 4, 6, seed=4)

# name: (fn(m, *inputs), inputs, differentiable)
CASES = {
    "greater": (lambda m, x, y: m.greater(x, y), [A, B], False),
    "greater_equal": (lambda m, x, y: m.greater_equal(x, y), [A, B], False),
    "less": (lambda m, x, y: m.less(x, 0.1), [A, B], False),
    "less_equal": (lambda m, x, y: m.less_equal(x, y), [A, B], False),
    "not_equal": (lambda m, x, y: m.not_equal(x, m.where(x > 0, x, y)), [A, B], False),
    "swapdims": (lambda m, x, y: m.swapdims(x, 0, 1) * 2, [A, B], True),
    "ravel": (lambda m, x, y: m.ravel(x.T) * 3, [A, B], True),
    "clone": (lambda m, x, y: m.clone(x) * y, [A, B], True),
    "detach": (lambda m, x, y: m.detach(x) * y, [A, B], True),
    "ger": (lambda m, x, y: m.ger(x[0], y[1]), [A, B], True),
    "mv": (lambda m, x, v: m.mv(x, v), [A, V], True),
    "adjoint": (lambda m, x, y: m.adjoint(x) * 2, [A, B], True),
    "fill": (lambda m, x, y: m.fill(x, 2.5), [A, B], False),
    "resolve_conj": (lambda m, x, y: m.resolve_conj(x) + m.resolve_neg(y), [A, B], True),
    "split_with_sizes": (lambda m, x, y: m.split_with_sizes(x, [1, 3], 1), [A, B], True),
    "unsafe_split": (lambda m, x, y: m.unsafe_split(x, 2, 1), [A, B], True),
    "unsafe_split_with_sizes": (lambda m, x, y: m.unsafe_split_with_sizes(x, [2, 1], 0), [A, B], True),
    "unsafe_chunk": (lambda m, x, y: m.unsafe_chunk(x, 2, 1), [A, B], True),
    "scalar_tensor": (lambda m, x, y: m.scalar_tensor(3) * x, [A, B], True),
    "asarray": (lambda m, x, y: m.asarray([[1.5, 2.0], [3.0, 4.0]], dtype=x.dtype) @ x[:2], [A, B], True),
    "norm_default": (lambda m, x, y: m.norm(x), [A, B], True),
    "norm_p_dim": (lambda m, x, y: m.norm(x, 3, dim=1, keepdim=True), [A, B], True),
    "norm_fro_dims": (lambda m, x, y: m.norm(x.reshape(3, 2, 2), "fro", dim=(1, 2)), [A, B], True),
    "norm_nuc": (lambda m, x, y: m.norm(x, "nuc"), [A, B], True),
    "gradient": (lambda m, x, y: m.gradient(x * x), [A, B], True),
    "gradient_spacing_edge2": (lambda m, x, y: m.gradient(x, spacing=[0.5], dim=1, edge_order=2), [A, B], True),
    "kl_div": (lambda m, x, y: m.kl_div(m.log_softmax(x, 1), m.softmax(y, 1), 0), [A, B], True),
    "kl_div_log_target": (lambda m, x, y: m.kl_div(x, y, 2, log_target=True), [A, B], True),
    "bce_with_logits": (lambda m, x, y: m.binary_cross_entropy_with_logits(x, m.sigmoid(y)), [A, B], True),
    "kl_div_mean": (lambda m, x, y: m.kl_div(x, y.exp(), 1), [A, B], True),
    "losses_default_to_none": (lambda m, x, y, s: (m.margin_ranking_loss(x[:, 0], y[:, 0], s), m.hinge_embedding_loss(
        x[:, 1], s), m.cosine_embedding_loss(x, y, s), m.triplet_margin_loss(x, y, x.flip(0))), [A, B, SIGN], True),
    "bce_with_logits_pos_weight": (lambda m, x, y: m.binary_cross_entropy_with_logits(
        x, m.sigmoid(y), None, (m.sigmoid(y[0]) + 1).detach(), 2), [A, B], True),
    "margin_ranking_loss": (lambda m, x, y, s: m.margin_ranking_loss(x[:, 0], y[:, 0], s, 0.2), [A, B, SIGN], True),
    "hinge_embedding_loss": (lambda m, x, y, s: m.hinge_embedding_loss(x[:, 0], s, 0.5, 0), [A, B, SIGN], True),
    "poisson_nll_loss": (lambda m, x, y: m.poisson_nll_loss(x, y.exp().detach(), True, True, 1e-8, 1), [A, B], True),
    "cosine_embedding_loss": (lambda m, x, y, s: m.cosine_embedding_loss(x, y, s, 0.1, 2), [A, B, SIGN], True),
    "triplet_margin_loss": (lambda m, x, y: m.triplet_margin_loss(x, y, x.flip(0), 1.0, 2, 1e-6, True), [A, B],
                            True),
    "embedding": (lambda m, w, y: m.embedding(w, m.tensor([[0, 2], [1, 2]]), 1), [A, B], True),
    "batch_norm": (lambda m, x, w: m.batch_norm(x, w[0, :4], w[1, :4], None, None, True, 0.1, 1e-5, False),
                   [IMG, randn(2, 4, seed=5)], True),
    "instance_norm": (lambda m, x, w: m.instance_norm(x, w[0], w[1], None, None, True, 0.1, 1e-5, False),
                      [IMG, randn(2, 4, seed=5)], True),
    "adaptive_avg_pool1d": (lambda m, x: m.adaptive_avg_pool1d(x, 4), [IMG], True),
    "adaptive_max_pool1d": (lambda m, x: m.adaptive_max_pool1d(x, 3), [IMG], True),
    "max_pool1d_with_indices": (lambda m, x: m.max_pool1d_with_indices(x, 2), [IMG], True),
    "channel_shuffle": (lambda m, x: m.channel_shuffle(x.reshape(2, 4, 2, 3), 2), [IMG], True),
    "constant_pad_nd": (lambda m, x: m.constant_pad_nd(x, [1, 2, 0, 1], 0.5), [IMG], True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch(name):
    fn, inputs, grad = CASES[name]
    check(lambda *xs: fn(na, *xs), inputs, torch_fn=lambda *xs: fn(torch, *xs), grad=grad)


@pytest.mark.parametrize("name", ["gradient", "norm_p_dim", "norm_nuc", "kl_div", "triplet_margin_loss"])
def test_gradcheck(name):
    fn, inputs, _ = CASES[name]
    assert gradcheck(lambda *xs: fn(na, *xs), inputs)


def test_integer_helpers():
    a, s = np.array([[1, -8, 5], [7, 0, -3]], dtype=np.int32), np.array([0, 1, 3], dtype=np.int32)
    check(lambda x, y: na.bitwise_left_shift(x, y), [a, s],
          torch_fn=lambda x, y: torch.bitwise_left_shift(x, y), grad=False)
    check(lambda x, y: na.bitwise_right_shift(x, y), [a, s],
          torch_fn=lambda x, y: torch.bitwise_right_shift(x, y), grad=False)
    check(lambda x: na.bitwise_left_shift(x, 2), [a], torch_fn=lambda x: torch.bitwise_left_shift(x, 2), grad=False)
    flat = np.array([0, 5, 11, 7, -1], dtype=np.int64)
    check(lambda i: na.unravel_index(i, (3, 4)), [flat], torch_fn=lambda i: torch.unravel_index(i, (3, 4)), grad=False)
    with pytest.raises(DTypeError, match="integer"):
        na.bitwise_left_shift(na.tensor([1.5]), 1)
    with pytest.raises(IndexingError, match="out of range"):
        na.unravel_index(na.tensor([12]), (3, 4))


def test_predicates_match_torch():
    x, z = na.tensor(A), torch.tensor(A)
    with reference():  # the torch side: its names go to the parity record when the test passes
        want = [getattr(torch, name)(z) for name in ("is_conj", "is_neg", "is_signed")]
        want += [torch.is_signed(torch.tensor([1], dtype=torch.uint8)), torch.is_same_size(z, torch.tensor(B)),
                 torch.is_same_size(z, torch.tensor(V)), torch.is_nonzero(torch.tensor([0.0])),
                 torch.is_nonzero(torch.tensor([2]))]
    got = [getattr(na, name)(x) for name in ("is_conj", "is_neg", "is_signed")]
    got += [na.is_signed(na.tensor(np.array([1], np.uint8))), na.is_same_size(x, na.tensor(B)),
            na.is_same_size(x, na.tensor(V)), na.is_nonzero(na.tensor([0.0])), na.is_nonzero(na.tensor([2]))]
    compare(got, want)
    assert want == [False, False, True, False, True, False, False, True]


@pytest.mark.parametrize("src", ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
                                 "float32", "float64", "complex64"])
def test_can_cast_matches_torch(src):
    for dst in ("bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64", "complex128"):
        with reference():
            want = torch.can_cast(getattr(torch, src), getattr(torch, dst))
        compare(na.can_cast(getattr(na, src), getattr(na, dst)), want, what=f"{src} -> {dst}")


def test_asarray_shares_or_copies_as_asked():
    a = np.arange(4.0)
    shared = na.asarray(a)
    a[0] = 7.0
    assert shared.numpy()[0] == 7.0  # the array's memory, as torch.asarray(ndarray)
    assert na.asarray(a, copy=True).numpy()[0] == 7.0 and not np.shares_memory(na.asarray(a, copy=True).data, a)
    with pytest.raises(DTypeError, match="copy=False"):
        na.asarray(a, dtype=na.float32, copy=False)
    t = na.asarray([1, 2])
    assert t.dtype == na.int64 and str(torch.asarray([1, 2]).dtype) == "torch.int64"
    assert na.asarray(a, requires_grad=True).requires_grad
    assert na.scalar_tensor(3).dtype == na.float32 and torch.scalar_tensor(3).dtype == torch.float32


def test_gradient_and_loss_argument_errors():
    with pytest.raises(ShapeError, match="edge_order=2 needs at least 3"):
        na.gradient(na.ones(2), edge_order=2)
    with pytest.raises(ShapeError, match="coordinate"):
        na.gradient(na.ones(3), spacing=[na.ones(3)])
    with pytest.raises(ShapeError, match="0 \\(none\\), 1 \\(mean\\) or 2 \\(sum\\)"):
        na.kl_div(na.ones(3), na.ones(3), "mean")


def test_constants_and_dtypes_match_torch():
    for name in ("e", "pi", "inf"):
        assert getattr(na, name) == getattr(torch, name)
    assert math.isnan(na.nan) and math.isnan(torch.nan)
    assert na.newaxis is torch.newaxis is None
    assert isinstance(na.float32, na.dtype) and isinstance(na.bfloat16, na.dtype)
    for name in ("short", "uint16", "uint32", "uint64"):
        want = np.array([0, 3, 65535 if name != "short" else 32767])
        ours = na.tensor(want, dtype=getattr(na, name))
        theirs = torch.tensor(want, dtype=getattr(torch, name))
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.").replace("int16", "int16")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_finfo_matches_torch(name):
    with reference():
        theirs = torch.finfo(getattr(torch, name))
    ours = na.finfo(getattr(na, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal"):
        compare(float(getattr(ours, attr)), float(getattr(theirs, attr)), what=attr)
    # 10^-digits: torch gives the Python float, NumPy the same number rounded to the dtype
    assert float(ours.resolution) == pytest.approx(theirs.resolution, rel=1e-3)
    assert float(na.finfo().eps) == torch.finfo().eps  # the default dtype's


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_torch(name):
    with reference():
        theirs = torch.iinfo(getattr(torch, name))
    ours = na.iinfo(getattr(na, name))
    compare([ours.bits, int(ours.max), int(ours.min)], [theirs.bits, theirs.max, theirs.min])


def test_finfo_iinfo_refuse_the_other_kind():
    with pytest.raises(DTypeError, match="iinfo"):
        na.finfo(na.int32)
    with pytest.raises(DTypeError, match="finfo"):
        na.iinfo(na.float32)


def test_rng_state_round_trip_repeats_the_draws_as_torchs_does():
    def round_trip(m, watch):
        with watch():  # for torch: only the state calls are claimed (the draws differ between the generators)
            m.manual_seed(11)
            seed, state = m.initial_seed(), m.get_rng_state()
        first = m.randn(5).numpy()
        with watch():
            m.set_rng_state(pickle.loads(pickle.dumps(state)))
        return [seed, bool(np.array_equal(m.randn(5).numpy(), first))]

    ours = round_trip(na, contextlib.nullcontext)
    compare(ours, round_trip(torch, reference))
    assert ours == [11, True]


def test_float32_matmul_precision_is_kept_and_checked():
    with reference():
        want = torch.get_float32_matmul_precision()
    compare(na.get_float32_matmul_precision(), want)
    assert want == "highest"
    try:
        x = na.tensor(A)
        before = (x @ x.T).numpy()
        na.set_float32_matmul_precision("high")
        assert na.get_float32_matmul_precision() == "high"
        np.testing.assert_array_equal((x @ x.T).numpy(), before)  # a permission: the products stay float32
        with pytest.raises(ConfigError, match="highest"):
            na.set_float32_matmul_precision("low")
    finally:
        na.set_float32_matmul_precision("highest")


# -- the regularized incomplete gamma functions (ops/incomplete_gamma.py) ------------------------------------
AG, XG = rand_pos(3, 4, seed=1, low=0.5, high=3.0), rand_pos(3, 4, seed=2, low=0.1, high=4.0)


@pytest.mark.parametrize("name", ["igamma", "igammac"])
def test_incomplete_gamma_against_torch(name):
    check(lambda a, x: getattr(na, name)(a.detach(), x), [AG, XG],
          torch_fn=lambda a, x: getattr(torch, name)(a.detach(), x))
    check(lambda a, x: getattr(na, name)(a.detach(), x), [AG[0], XG],  # broadcasting a
          torch_fn=lambda a, x: getattr(torch, name)(a.detach(), x))
    assert gradcheck(lambda a, x: getattr(na, name)(a, x), [na.tensor(AG), XG])  # a: a constant


def test_incomplete_gamma_has_no_gradient_in_a_as_torch():
    a = na.tensor(AG, requires_grad=True)
    with pytest.raises(na.errors.GradientError, match="detach a"):
        na.igamma(a, na.tensor(XG)).sum().backward()
    with pytest.raises(RuntimeError, match="not implemented"):
        torch.igamma(torch.tensor(AG, requires_grad=True), torch.tensor(XG)).sum().backward()
