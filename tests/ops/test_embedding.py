"""embedding and one_hot: parity with torch, gradient accumulation, padding_idx, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, IndexingError, ShapeError

IDS = np.array([[1, 4, 1, 0], [4, 4, 2, 9]])


@pytest.mark.parametrize("padding_idx", [None, 4, -1, 0])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_parity(padding_idx, scale_grad_by_freq):
    check(lambda w: F.embedding(na.tensor(IDS), w, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq),
          [randn(10, 3, seed=1)],
          torch_fn=lambda w: TF.embedding(torch.tensor(IDS), w, padding_idx=padding_idx,
                                          scale_grad_by_freq=scale_grad_by_freq))


def test_repeated_indices_accumulate_and_padding_row_gets_no_grad():
    w = na.tensor(randn(10, 3, seed=2), requires_grad=True)
    F.embedding(na.tensor(IDS), w, padding_idx=1).sum().backward()
    counts = np.bincount(IDS.ravel(), minlength=10).astype(float)
    counts[1] = 0
    np.testing.assert_array_equal(w.grad.numpy(), np.repeat(counts[:, None], 3, axis=1))


@pytest.mark.parametrize("ids_shape", [(), (5,), (2, 3, 2)])
def test_shapes_and_gradcheck(ids_shape):
    ids = np.random.default_rng(3).integers(0, 6, ids_shape)
    check(lambda w: F.embedding(na.tensor(ids), w), [randn(6, 4, seed=4)],
          torch_fn=lambda w: TF.embedding(torch.tensor(ids), w))
    gradcheck(lambda w: F.embedding(na.tensor(ids), w), [randn(6, 4, seed=4)])  # (padding_idx is not a derivative)


def test_max_norm_renormalises_in_place_like_torch():
    w0 = randn(10, 3, seed=5) * 3
    ours, ref = na.tensor(w0.copy()), torch.tensor(w0.copy())
    y = F.embedding(na.tensor(IDS), ours, max_norm=1.5)
    r = TF.embedding(torch.tensor(IDS), ref, max_norm=1.5)
    np.testing.assert_allclose(y.numpy(), r.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)


def test_one_hot():
    t = np.array([[0, 3], [2, 1]])
    for n in (-1, 6):
        ours = F.one_hot(na.tensor(t), n)
        ref = TF.one_hot(torch.tensor(t), n)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    assert F.one_hot(na.tensor(np.array(2)), 3).shape == (3,)


def test_errors():
    w = na.randn(5, 3)
    with pytest.raises(IndexingError, match="index 5"):
        F.embedding(na.tensor(np.array([0, 5])), w)
    with pytest.raises(IndexingError, match="-1"):
        F.embedding(na.tensor(np.array([0, -1])), w)
    with pytest.raises(DTypeError):
        F.embedding(na.tensor(np.array([0.0, 1.0])), w)
    with pytest.raises(ShapeError):
        F.embedding(na.tensor(np.array([0])), na.randn(5))
    with pytest.raises(ConfigError, match="padding_idx"):
        F.embedding(na.tensor(np.array([0])), w, padding_idx=7)
    with pytest.raises(IndexingError, match="out of range"):
        F.one_hot(na.tensor(np.array([0, 3])), 3)
    with pytest.raises(IndexingError, match="non-negative"):
        F.one_hot(na.tensor(np.array([0, -1])))
    with pytest.raises(DTypeError):
        F.one_hot(na.tensor([0.0, 1.0]))
