"""``F.multi_head_attention_forward``: torch's functional multi-head attention, the arithmetic of
:class:`MultiheadAttention` with the weights passed in (sequence-first inputs, as torch's).

NOTE: it lives here, beside the module whose forward it reuses, and is registered into
``nn.functional`` at the bottom of this file: ``nn.functional`` imports only ``ops``, and an import of
``nn.modules`` from it would be an import cycle (tests/test_layering.py). Importing ``neural_arch.nn``
(which any import of ``nn.functional`` does first) runs this registration.
"""

from __future__ import annotations

import functools

from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn.modules.attention import MultiheadAttention
from neural_arch.nn.modules.module import Module

__all__ = ["multi_head_attention_forward"]


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """Multi-head attention of (L, N, E) queries over (S, N, E) keys/values: ``(output, weights or None)``,
    as ``MultiheadAttention.forward`` with these weights. ``static_k`` / ``static_v`` are not supported."""
    if static_k is not None or static_v is not None:
        raise ConfigError("multi_head_attention_forward: static_k / static_v are not supported")
    if query.shape[-1] != embed_dim_to_check:
        raise ShapeError(f"multi_head_attention_forward: query {shape_str(query.shape)} does not have "
                         f"embed_dim_to_check={embed_dim_to_check} features")
    if embed_dim_to_check % num_heads:
        raise ConfigError(f"multi_head_attention_forward: embed_dim {embed_dim_to_check} is not divisible by "
                          f"num_heads {num_heads}")
    m = MultiheadAttention.__new__(MultiheadAttention)
    Module.__init__(m)
    m.embed_dim, m.num_heads, m.head_dim = embed_dim_to_check, num_heads, embed_dim_to_check // num_heads
    m.kdim, m.vdim = key.shape[-1], value.shape[-1]
    m._qkv_same_embed_dim = not use_separate_proj_weight
    m.dropout, m.batch_first, m.training = dropout_p, False, training
    m.in_proj_weight, m.in_proj_bias = in_proj_weight, in_proj_bias
    m.q_proj_weight, m.k_proj_weight, m.v_proj_weight = q_proj_weight, k_proj_weight, v_proj_weight
    m.bias_k, m.bias_v, m.add_zero_attn = bias_k, bias_v, add_zero_attn
    m.out_proj = functools.partial(F.linear, weight=out_proj_weight, bias=out_proj_bias)  # the Linear's call
    return MultiheadAttention.forward(m, query, key, value, key_padding_mask, need_weights, attn_mask,
                                      average_attn_weights, is_causal)


F.multi_head_attention_forward = multi_head_attention_forward
