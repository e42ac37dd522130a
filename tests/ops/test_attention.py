"""scaled_dot_product_attention: parity with torch (masks, causal, scale, GQA, fully masked rows),
gradcheck, dropout, fused == composition, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, ShapeError

SHAPES = [  # q, k, v
    ((5, 4), (6, 4), (6, 3)),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4)),
    ((2, 1, 4, 4), (2, 1, 4, 4), (2, 1, 4, 4)),
]


def _qkv(shapes, seed=0):
    return [randn(*s, seed=seed + i) for i, s in enumerate(shapes)]


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("scale", [None, 0.37])
def test_parity_no_mask(shapes, scale):
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=scale), _qkv(shapes),
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, scale=scale))


@pytest.mark.parametrize("shapes", SHAPES)
def test_parity_causal(shapes):
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), _qkv(shapes, 3),
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.parametrize("causal", [False, True])
def test_parity_large_scores_use_the_fused_softmax(causal):
    # float32 scores take the numba softmax kernels (forward and backward, into new arrays);
    # causal with more queries than keys, as torch aligns it
    shapes = ((2, 4, 48, 16), (2, 4, 40, 16), (2, 4, 40, 8))
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal), _qkv(shapes, 7),
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=causal))


@pytest.mark.parametrize("mask_shape", ["LS", "1LS", "B11S", "BHLS"])
def test_parity_bool_mask_broadcast(mask_shape):
    q, k, v = _qkv(SHAPES[1], 5)
    full = {"LS": (5, 7), "1LS": (1, 5, 7), "B11S": (2, 1, 1, 7), "BHLS": (2, 3, 5, 7)}[mask_shape]
    m = np.random.default_rng(1).random(full) > 0.4
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=na.tensor(m)), [q, k, v],
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(m)))


def test_parity_float_mask_with_gradient():
    q, k, v = _qkv(SHAPES[1], 7)
    m = randn(2, 1, 5, 7, seed=9)
    check(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), [q, k, v, m],
          torch_fn=lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_give_zeros_like_torch(kind):
    q, k, v = _qkv(SHAPES[1], 11)
    keep = np.random.default_rng(2).random((5, 7)) > 0.3
    keep[1] = False  # query 1 may attend to nothing
    keep[4] = False
    m = keep if kind == "bool" else np.where(keep, 0.0, -np.inf)
    check(lambda q, k, v: F.scaled_dot_product_attention(
              q, k, v, attn_mask=na.tensor(m, dtype=q.dtype if kind == "float" else None)),
          [q, k, v],
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(
              q, k, v, attn_mask=torch.tensor(m, dtype=q.dtype if kind == "float" else torch.bool)))
    out = F.scaled_dot_product_attention(na.tensor(q), na.tensor(k), na.tensor(v), attn_mask=na.tensor(keep)).numpy()
    assert np.all(out[:, :, 1] == 0) and np.all(out[:, :, 4] == 0) and np.isfinite(out).all()


def test_large_scores_float32():
    q, k, v = _qkv(SHAPES[0], 13)
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=300.0), [q, k, v],
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, scale=300.0), dtypes=(np.float32,),
          rtol=1e-4, atol=1e-4)


def test_gqa():
    q, k, v = randn(2, 6, 4, 8, seed=1), randn(2, 2, 5, 8, seed=2), randn(2, 2, 5, 3, seed=3)
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True), [q, k, v],
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), [q, k, v])


@pytest.mark.parametrize("mask", [None, "bool", "float", "causal"])
def test_gradcheck(mask):
    q, k, v = _qkv(((2, 4, 3), (2, 5, 3), (2, 5, 2)), 17)
    keep = np.random.default_rng(3).random((4, 5)) > 0.3
    keep[2] = False
    inputs = [q, k, v]
    if mask == "float":
        inputs.append(randn(4, 5, seed=4))

    def fn(q, k, v, *m):
        if mask == "bool":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=na.tensor(keep))
        if mask == "causal":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m[0] if m else None)

    gradcheck(fn, inputs)


def test_fused_equals_composition():
    q, k, v = _qkv(SHAPES[1], 19)
    keep = np.random.default_rng(4).random((5, 7)) > 0.3
    ins1 = [na.tensor(a, requires_grad=True) for a in (q, k, v)]
    ins2 = [na.tensor(a, requires_grad=True) for a in (q, k, v)]
    y1 = F.scaled_dot_product_attention(*ins1, attn_mask=na.tensor(keep))
    qt, kt, vt = ins2
    s = (qt @ kt.transpose(-1, -2)) * (1 / np.sqrt(8))
    s = s.masked_fill(na.tensor(~keep), float("-inf"))
    y2 = F.softmax(s, -1) @ vt
    up = na.tensor(randn(*y1.shape, seed=20))
    np.testing.assert_allclose(y1.detach().numpy(), y2.detach().numpy(), rtol=1e-12, atol=1e-13)
    y1.backward(up)
    y2.backward(up)
    for a, b in zip(ins1, ins2):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dropout_is_seeded_and_consistent():
    q, k, v = (na.tensor(a, requires_grad=True) for a in _qkv(SHAPES[1], 21))
    g1, g2 = na.Generator(5), na.Generator(5)
    y1 = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=g1)
    y2 = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=g2)
    np.testing.assert_array_equal(y1.detach().numpy(), y2.detach().numpy())
    # the same draw by hand: softmax weights times the scaled keep-mask, then V
    from neural_arch.ops.dropout import keep_mask

    d = keep_mask((2, 3, 5, 7), 0.4, q.dtype, na.Generator(5))
    p = F.softmax((q @ k.transpose(-1, -2)) * (1 / np.sqrt(8)), -1)
    y3 = (p * na.tensor(d)) @ v
    np.testing.assert_allclose(y1.detach().numpy(), y3.detach().numpy(), rtol=1e-5, atol=1e-6)
    up = na.tensor(randn(*y1.shape, seed=22))
    y1.backward(up)
    grads = [t.grad.numpy().copy() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    y3.backward(up)
    for g, t in zip(grads, (q, k, v)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert (d == 0).mean() == pytest.approx(0.4, abs=0.15)


def test_errors():
    q, k, v = (na.randn(*s) for s in SHAPES[1])
    with pytest.raises(ShapeError, match="agree"):
        F.scaled_dot_product_attention(q, na.randn(2, 3, 7, 5), v)
    with pytest.raises(ShapeError, match="agree"):
        F.scaled_dot_product_attention(q, k, na.randn(2, 3, 6, 4))
    with pytest.raises(ShapeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=na.ones(5, 6).bool())
    with pytest.raises(ConfigError, match="is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=na.ones(5, 7).bool(), is_causal=True)
    with pytest.raises(ShapeError, match="at least 2 dims"):
        F.scaled_dot_product_attention(na.randn(4), k, v)
    with pytest.raises(DTypeError):
        F.scaled_dot_product_attention(q, k, v, attn_mask=na.ones(5, 7).long())
    with pytest.raises(ShapeError, match="multiple"):
        F.scaled_dot_product_attention(na.randn(1, 4, 2, 3), na.randn(1, 3, 2, 3), na.randn(1, 3, 2, 3),
                                       enable_gqa=True)
    with pytest.raises(ConfigError):
        F.scaled_dot_product_attention(q, k, v, dropout_p=-0.1)
