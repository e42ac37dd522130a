"""``scaled_dot_product_attention``: softmax(Q K^T * scale + mask) V as one fused node."""

from __future__ import annotations

import functools
import math

import numpy as np

from neural_arch.autograd.autocast import LOWER
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import gemm
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.kernels.softmax_loss import softmax, softmax_backward
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops._half import compute_dtype
from neural_arch.ops.dropout import keep_mask

__all__ = ["scaled_dot_product_attention"]


class ScaledDotProductAttention(Function):
    """S = scale Q K^T + M,   P = softmax(S) along keys,   O = (P * D) V
    (M: additive mask, -inf where a boolean mask is False; D: scaled dropout keep-mask or 1)

    Backward, with Pd = P * D:
        dV = Pd^T dO,   dP = (dO V^T) * D,   dS = P * (dP - rowsum(dP * P))
        dQ = scale dS K,   dK = scale dS^T Q,   dM = dS (for a float mask that needs grad)

    A row whose scores are all -inf (every key masked) attends to nothing: its P row is 0, so
    its output and gradients are 0 -- what torch 2.13 returns, not NaN. Half inputs: computed in float32
    (``half``); P is not kept but recomputed in backward from the saved half Q, K, bit for bit the forward's
    (float32 P would take twice the memory of Q, K, V together at T = 256). With ``groups`` > 1
    (grouped-query attention) each K/V head serves ``groups`` consecutive query heads; their
    gradients are summed back per K/V head.
    """

    half = "float32"
    half_recomputed = (3,)  # P, for half inputs: backward recomputes it from Q, K and the mask (see below)
    autocast = LOWER  # torch's CPU autocast list
    draws_random = True  # with dropout: the keep-mask is drawn in forward

    @staticmethod
    def forward(ctx, q, k, v, *mask_in, mask, scale, drop, groups, causal=False):
        if groups > 1:
            k, v = np.repeat(k, groups, axis=-3), np.repeat(v, groups, axis=-3)
        if mask_in:
            mask = mask_in[0]
        # NOTE: heads usually arrive as transposed views (B, T, nh, hs) -> (B, nh, T, hs); NumPy's stacked
        # matmul cannot hand those to BLAS and runs far slower, so copy them to contiguous memory once,
        # unless our products read them in place (MKL: each head is a matrix with a leading dimension).
        if not (gemm.reads_in_place(q, k.shape[-2]) and q.dtype == k.dtype == v.dtype):
            q, k, v = np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v)
        p = _probabilities(q, k, mask, scale, causal)
        if drop is not None:  # the keep-mask D is drawn here, in forward, so that running the op again draws anew
            drop = keep_mask(p.shape, drop[0], p.dtype, drop[1])
        out = gemm.matmul(p if drop is None else p * drop, v)
        ctx.save_for_backward(q, k, v, p, drop, mask)
        ctx.scale, ctx.groups, ctx.causal = scale, groups, causal
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, p, drop, mask = ctx.saved_tensors
        if p is None:  # half inputs (``half_recomputed``): the same float32 P as forward's, from the same Q, K
            p = _probabilities(q, k, mask, ctx.scale, ctx.causal)
        need = ctx.needs_input_grad
        grad = np.ascontiguousarray(grad)  # often a transposed view: see the NOTE in forward
        pd = p if drop is None else p * drop
        dv = gemm.matmul(np.swapaxes(pd, -1, -2), grad) if need[2] else None
        dp = gemm.matmul(grad, np.swapaxes(v, -1, -2))
        if drop is not None:
            dp *= drop
        ds = softmax_backward(p, dp, (p.ndim - 1,), False)  # p (dp - rowsum(dp p))
        del dp
        dmask = ds if len(need) > 3 and need[3] else None
        dq = gemm.matmul(ds, k) * ctx.scale if need[0] else None
        dk = gemm.matmul(np.swapaxes(ds, -1, -2), q) * ctx.scale if need[1] else None
        g = ctx.groups
        if g > 1:  # sum the gradients of the query heads that shared one K/V head
            if dk is not None:
                dk = dk.reshape(dk.shape[:-3] + (dk.shape[-3] // g, g) + dk.shape[-2:]).sum(axis=-3)
            if dv is not None:
                dv = dv.reshape(dv.shape[:-3] + (dv.shape[-3] // g, g) + dv.shape[-2:]).sum(axis=-3)
        return (dq, dk, dv) + ((dmask,) if len(need) > 3 else ())


def _probabilities(q, k, mask, scale, causal):
    """P = softmax(scale Q K^T + M) along keys, on contiguous Q and K (forward, and backward for half inputs)."""
    s = gemm.matmul(q, np.swapaxes(k, -1, -2))
    s *= scale
    if mask is not None:
        if mask.dtype == np.bool_:
            s = np.where(mask, s, -np.inf).astype(s.dtype, copy=False)
        elif np.broadcast_shapes(s.shape, mask.shape) == s.shape:
            s += mask  # in place: no second scores-sized array
        else:
            s = s + mask
    if mask is None or causal or _masks_no_row(mask, s):  # the plain softmax: no row is fully masked
        return softmax(s, (s.ndim - 1,), False)
    m = s.max(axis=-1, keepdims=True)
    dead = ~np.isfinite(m)  # every key masked (or a -inf/NaN score row)
    if not dead.any():  # a padding mask leaves every row a key: the fused softmax, as without a mask
        return softmax(s, (s.ndim - 1,), False)
    m = np.where(dead, 0, m).astype(s.dtype, copy=False)
    p = s
    p -= m
    np.exp(p, out=p)
    total = p.sum(axis=-1, keepdims=True)
    total[total == 0] = 1  # 0 / 1 = 0: a fully masked row gives zeros
    p /= total
    return p


def _masks_no_row(mask, s) -> bool:
    """Whether an additive ``mask`` smaller than the scores (a padding mask (B, 1, 1, S)) is finite: then no
    row of scores is fully masked, and the softmax needs no pass over the scores looking for one (a BERT
    mask holds the dtype's minimum, not -inf, as transformers'). A row of -inf scores from infinite
    inputs is then NaN, as it is without a mask."""
    return mask.dtype != np.bool_ and mask.size < s.size and bool(np.isfinite(mask).all())


@functools.lru_cache(maxsize=16)
def _causal_bias(L: int, S: int, dtype) -> np.ndarray:
    """The additive causal mask: 0 where key j <= query i, -inf above the diagonal (read-only, cached)."""
    bias = np.triu(np.full((L, S), -np.inf, dtype=dtype), k=1)
    bias.flags.writeable = False
    return bias


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False, generator=None) -> Tensor:
    """softmax(Q K^T * scale + mask) V over query (..., L, E), key (..., S, E), value (..., S, Ev).

    ``attn_mask``: boolean (True = may attend, as torch) or additive float, broadcastable to
    (..., L, S). ``is_causal``: query i attends to keys j <= i (top-left aligned, as torch).
    ``scale`` defaults to 1/sqrt(E). ``dropout_p`` drops attention weights using ``generator``
    (ours; na's default generator otherwise). ``enable_gqa``: key/value may have fewer heads
    (dim -3) than query, dividing them.
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or not is_floating(t.data.dtype):
            raise DTypeError(f"scaled_dot_product_attention: {name} must be a floating-point Tensor")
        if t.data.ndim < 2:
            raise ShapeError(f"scaled_dot_product_attention: {name} needs at least 2 dims (..., seq, dim), "
                             f"got {shape_str(t.shape)}")
    qs, ks, vs = query.data.shape, key.data.shape, value.data.shape
    if qs[-1] != ks[-1] or ks[-2] != vs[-2]:
        raise ShapeError(f"scaled_dot_product_attention: query {shape_str(qs)}, key {shape_str(ks)} and value "
                         f"{shape_str(vs)} must agree: query and key on the last dim, key and value on seq (-2)")
    if not 0.0 <= dropout_p <= 1.0:
        raise ConfigError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    groups = 1
    if enable_gqa and len(qs) >= 3 and len(ks) >= 3 and qs[-3] != ks[-3]:
        if qs[-3] % ks[-3] or ks[-3] != vs[-3]:
            raise ShapeError(f"scaled_dot_product_attention: with enable_gqa, query heads ({qs[-3]}) must be a "
                             f"multiple of key/value heads ({ks[-3]}, {vs[-3]})")
        groups = qs[-3] // ks[-3]
    L, S = qs[-2], ks[-2]
    dt = query.data.dtype
    if key.data.dtype != dt or value.data.dtype != dt:
        raise DTypeError(f"scaled_dot_product_attention: query, key and value must share a dtype, got "
                         f"{query.dtype}, {key.dtype}, {value.dtype}")
    mask, mask_in = None, ()
    dt = compute_dtype(dt)  # constants are in the dtype forward computes in (float32 for half inputs)
    if is_causal:
        if attn_mask is not None:
            raise ConfigError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
        mask = _causal_bias(L, S, np.dtype(dt))  # (a dtype object: bfloat16's .str is "<V2")
    elif attn_mask is not None:
        m = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
        try:
            np.broadcast_shapes(m.shape, qs[:-1] + (S,))
        except ValueError:
            raise ShapeError(f"scaled_dot_product_attention: attn_mask {shape_str(m.shape)} does not broadcast to "
                             f"the scores' shape {shape_str(qs[:-1] + (S,))}") from None
        if m.dtype != np.bool_:
            if not is_floating(m.dtype):
                raise DTypeError(f"scaled_dot_product_attention: attn_mask must be bool or float, got {m.dtype}")
            if isinstance(attn_mask, Tensor) and attn_mask.requires_grad:
                mask_in = (attn_mask if attn_mask.dtype == query.dtype else attn_mask.to(query.dtype),)
            m = m.astype(dt, copy=False)
        mask = m
    scale = 1.0 / math.sqrt(qs[-1]) if scale is None else float(scale)
    drop = (dropout_p, generator) if dropout_p > 0 else None  # the mask is drawn in forward
    return ScaledDotProductAttention.apply(query, key, value, *mask_in, mask=mask, scale=scale, drop=drop,
                                           groups=groups, causal=is_causal)
