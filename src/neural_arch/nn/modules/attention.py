"""``MultiheadAttention`` with torch's parameters and semantics.

Parameters (torch's names, so checkpoints load): ``in_proj_weight`` (3E, E) holding
W_q, W_k, W_v stacked, ``in_proj_bias`` (3E,), ``out_proj.weight`` / ``out_proj.bias``;
or ``q_proj_weight`` / ``k_proj_weight`` / ``v_proj_weight`` when ``kdim`` or ``vdim``
differ from ``embed_dim``; ``bias_k`` / ``bias_v`` with ``add_bias_kv``.

Per head h (E = H * D)::

    Q_h = x_q W_q,h + b      K_h = x_k W_k,h + b      V_h = x_v W_v,h + b
    A_h = softmax(Q_h K_h^T / sqrt(D) + mask)        O = concat_h(A_h V_h) W_o^T + b_o
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.linear import Linear
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param
from neural_arch.ops import shape as _shape


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al., 2017), as ``torch.nn.MultiheadAttention``.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` -> ``(output, weights or None)``.

    Shapes (``batch_first=False``, torch's default): query ``(L, N, E)``, key/value ``(S, N, E)``,
    output ``(L, N, E)``; ``batch_first=True`` puts N first; unbatched ``(L, E)`` works too.
    ``key_padding_mask`` ``(N, S)``: True (or -inf) marks keys to ignore. ``attn_mask`` ``(L, S)``
    or ``(N * num_heads, L, S)``: True = not allowed, or a float mask that is added.
    ``weights``: ``(N, L, S)`` averaged over heads, or ``(N, H, L, S)`` with
    ``average_attn_weights=False``. ``is_causal`` is a hint, as in torch: it needs ``attn_mask``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ConfigError(f"MultiheadAttention: embed_dim and num_heads must be > 0, got {embed_dim}, {num_heads}")
        if embed_dim % num_heads:
            raise ConfigError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                              f"num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        kw = dict(dtype=dtype, device=device)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty_param(3 * embed_dim, embed_dim, **kw)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = empty_param(embed_dim, embed_dim, **kw)
            self.k_proj_weight = empty_param(embed_dim, self.kdim, **kw)
            self.v_proj_weight = empty_param(embed_dim, self.vdim, **kw)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = empty_param(3 * embed_dim, **kw)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = empty_param(1, 1, embed_dim, **kw)
            self.bias_v = empty_param(1, 1, embed_dim, **kw)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """torch's init: Xavier-uniform projections, zero biases; out_proj.weight keeps Linear's init."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    # -- forward -----------------------------------------------------------------------------
    def _project(self, query, key, value):
        """The three input projections, (N, L, E) each; one GEMM when query is key is value."""
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:
                return _shape.chunk(F.linear(query, w, b), 3, dim=-1)
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _float_mask(self, mask, dtype, name: str):
        """A bool mask (True = masked) -> -inf where True; a float mask is used as given."""
        if mask is None:
            return None
        arr = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
        if arr.dtype == np.bool_:
            out = np.zeros(arr.shape, dtype=dtype)
            out[arr] = -np.inf
            return out
        if not is_floating(arr.dtype):
            raise ConfigError(f"MultiheadAttention: only bool and floating types of {name} are "
                              f"supported, got {arr.dtype}")
        return arr.astype(dtype, copy=False)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(f"MultiheadAttention: query, key and value must all be 3-D (batched) or 2-D, got "
                             f"{shape_str(query.shape)}, {shape_str(key.shape)}, {shape_str(value.shape)}")
        if query.shape[-1] != self.embed_dim:
            raise ShapeError(f"MultiheadAttention: query's last dim is {query.shape[-1]}, expected embed_dim "
                             f"{self.embed_dim}")
        if is_causal and attn_mask is None:
            raise ConfigError("MultiheadAttention: is_causal is a hint and needs attn_mask too; pass the causal "
                              "mask as attn_mask")
        same = query is key and key is value
        # work batch-first internally: (N, L, E)
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.reshape((1, -1)) if isinstance(key_padding_mask, Tensor) \
                    else np.asarray(key_padding_mask).reshape(1, -1)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if same:
            key = value = query
        n, tgt_len, _ = query.shape
        src_len = key.shape[1]
        H, D = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        dtype = q.dtype
        kpm = self._float_mask(key_padding_mask, dtype, "key_padding_mask")
        am = self._float_mask(attn_mask, dtype, "attn_mask")
        if kpm is not None and kpm.shape != (n, src_len):
            raise ShapeError(f"MultiheadAttention: key_padding_mask must have shape ({n}, {src_len}), got "
                             f"{shape_str(kpm.shape)}")
        if am is not None:
            if am.ndim == 2:
                if am.shape != (tgt_len, src_len):
                    raise ShapeError(f"MultiheadAttention: the 2-D attn_mask should have shape ({tgt_len}, {src_len}), "
                                     f"got {shape_str(am.shape)}")
                am = am[None, None]
            elif am.ndim == 3:
                if am.shape != (n * H, tgt_len, src_len):
                    raise ShapeError(f"MultiheadAttention: the 3-D attn_mask should have shape ({n * H}, {tgt_len}, "
                                     f"{src_len}), got {shape_str(am.shape)}")
                am = am.reshape(n, H, tgt_len, src_len)
            else:
                raise ShapeError(f"MultiheadAttention: attn_mask must be 2-D or 3-D, got {shape_str(am.shape)}")
        if self.bias_k is not None:  # one extra learned key/value position
            k = _shape.cat([k, self.bias_k.expand(n, 1, self.embed_dim)], dim=1)
            v = _shape.cat([v, self.bias_v.expand(n, 1, self.embed_dim)], dim=1)
            am = None if am is None else np.concatenate([am, np.zeros(am.shape[:-1] + (1,), dtype)], -1)
            kpm = None if kpm is None else np.concatenate([kpm, np.zeros((n, 1), dtype)], -1)
        q = q.reshape(n, tgt_len, H, D).transpose(1, 2)  # (N, H, L, D)
        k = k.reshape(n, -1, H, D).transpose(1, 2)  # (N, H, S, D)
        v = v.reshape(n, -1, H, D).transpose(1, 2)
        if self.add_zero_attn:  # one extra all-zero key/value position
            zeros = Tensor._wrap(np.zeros((n, H, 1, D), dtype=dtype))
            k = _shape.cat([k, zeros], dim=2)
            v = _shape.cat([v, zeros], dim=2)
            am = None if am is None else np.concatenate([am, np.zeros(am.shape[:-1] + (1,), dtype)], -1)
            kpm = None if kpm is None else np.concatenate([kpm, np.zeros((n, 1), dtype)], -1)
        mask = am
        if kpm is not None:
            kpm = kpm[:, None, None, :]  # (N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        mask_t = None if mask is None else Tensor._wrap(mask)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            # explicit softmax so the weights can be returned: A = softmax(Q K^T / sqrt(D) + mask)
            scores = (q * (1.0 / math.sqrt(D))) @ k.transpose(-2, -1)
            if mask_t is not None:
                scores = scores + mask_t
            weights = F.softmax(scores, dim=-1)
            if dropout_p > 0:
                weights = F.dropout(weights, dropout_p, True)
            out = weights @ v
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask_t, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(n, tgt_len, self.embed_dim)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self) -> str:
        return ""
