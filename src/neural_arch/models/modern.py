"""A modern decoder-only transformer in the Llama layout, so ``LlamaForCausalLM`` checkpoints load.

    model = ModernTransformer.from_pretrained("path/to/llama")   # config.json + model.safetensors
    logits = model(ids).logits                                    # ids: (B, T) int64

What changed since GPT-2, each a line or two below:

- RMSNorm instead of LayerNorm: x / rms(x) * g, no mean, no bias (Zhang & Sennrich 2019).
- Rotary position embeddings (RoPE, Su et al. 2021) instead of learned ones:
  each query/key pair of channels is rotated by an angle proportional to the
  position, so q . k depends on the positions only through their difference.
- SwiGLU MLP (Shazeer 2020): down(silu(gate(x)) * up(x)).
- Grouped-query attention (Ainslie et al. 2023): n_kv_heads <= n_heads key/value
  heads, each shared by a group of query heads; the KV cache shrinks by that factor.
- No biases; an untied output head unless ``tie_word_embeddings``.

The names are transformers' Llama names (``model.layers.N.self_attn.q_proj``,
``mlp.gate_proj``, ``input_layernorm``, ...) and the RoPE convention is
Llama's "rotate half" (channel i pairs with channel i + head_dim/2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.autograd import Tensor
from neural_arch.errors import ConfigError
from neural_arch.models._checkpointing import GradientCheckpointingMixin, checkpoint, checkpointing
from neural_arch.models.generation import (
    CausalLMOutputWithPast,
    GenerationMixin,
    attention_bias,
    head_logits_and_loss,
    matrix_decay_groups,
    token_ids,
)
from neural_arch.models.hf import config_from_dict, load_causal_lm, load_safetensors_dir, read_config, save_causal_lm

__all__ = ["LlamaConfig", "LlamaForCausalLM", "ModernConfig", "ModernTransformer"]


@dataclass
class ModernConfig:
    """Hyperparameters, with the field names of ``transformers.LlamaConfig``.

    The defaults are a small model; ``from_dict`` reads a Llama ``config.json``.
    """

    vocab_size: int = 32000
    hidden_size: int = 512
    intermediate_size: int = 1376  # SwiGLU width, about 8/3 * hidden_size
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int | None = None  # None: as many as query heads (no grouping)
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    attention_bias: bool = False
    mlp_bias: bool = False
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False
    use_cache: bool = True
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = None

    def __post_init__(self):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ConfigError(f"ModernConfig: hidden_size ({self.hidden_size}) must be divisible by "
                                  f"num_attention_heads ({self.num_attention_heads}), or give head_dim")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"ModernConfig: num_attention_heads ({self.num_attention_heads}) must be a multiple "
                              f"of num_key_value_heads ({self.num_key_value_heads})")
        if self.head_dim % 2:
            raise ConfigError(f"ModernConfig: head_dim must be even for rotary embeddings, got {self.head_dim}")

    @classmethod
    def from_dict(cls, d: dict) -> ModernConfig:
        """From a Llama ``config.json``; rope_theta may sit in ``rope_parameters`` (transformers 5)."""
        d = dict(d)
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise ConfigError(f"ModernConfig: rope scaling {rope!r} is not supported (only the default RoPE)")
        if "rope_theta" in rope:
            d["rope_theta"] = rope["rope_theta"]
        if d.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"ModernConfig: hidden_act {d['hidden_act']!r} is not supported (SwiGLU uses silu)")
        if d.get("pretraining_tp", 1) != 1:
            raise ConfigError("ModernConfig: pretraining_tp != 1 is not supported")
        return config_from_dict(cls, d)

    def to_dict(self) -> dict:
        """The ``config.json`` dict that ``transformers.LlamaConfig`` reads."""
        d = asdict(self)
        return {**d, "rope_parameters": {"rope_theta": self.rope_theta, "rope_type": "default"},
                "hidden_act": "silu", "model_type": "llama", "architectures": ["LlamaForCausalLM"],
                "dtype": "float32"}


# -- rotary position embeddings ----------------------------------------------------------------------
def rope_cos_sin(position_ids: np.ndarray, head_dim: int, theta: float, dtype):
    """cos and sin of the rotation angles, each (B or 1, 1, T, head_dim), as constants (no gradient).

    Channel pair (i, i + head_dim/2) at position p turns by p * theta^(-2i/head_dim).
    """
    inv_freq = 1.0 / (np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    angles = position_ids[..., None].astype(np.float32) * inv_freq  # (B, T, head_dim/2), in float32 as Llama
    angles = np.concatenate([angles, angles], axis=-1)[:, None]  # (B, 1, T, head_dim)
    return ops.tensor(np.cos(angles).astype(dtype)), ops.tensor(np.sin(angles).astype(dtype))


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) on the two halves of the last dim: a 90-degree turn of every pair."""
    h = x.shape[-1] // 2
    return ops.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    """Rotate every channel pair of x (B, nh, T, hd) by its angle: x cos + rotate_half(x) sin."""
    return x * cos + rotate_half(x) * sin


# -- the blocks --------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Causal self-attention with rotary positions and grouped-query key/value heads."""

    def __init__(self, config: ModernConfig):
        super().__init__()
        self.n_head, self.n_kv, self.hd = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        C, b = config.hidden_size, config.attention_bias
        self.q_proj = nn.Linear(C, self.n_head * self.hd, bias=b)
        self.k_proj = nn.Linear(C, self.n_kv * self.hd, bias=b)
        self.v_proj = nn.Linear(C, self.n_kv * self.hd, bias=b)
        self.o_proj = nn.Linear(self.n_head * self.hd, C, bias=b)
        self.dropout_p = config.attention_dropout

    def forward(self, x, cos, sin, bias=None, is_causal=False, layer_past=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, nkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, nkv, T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # positions enter here, and only here
        if layer_past is not None:  # cached keys/values (already rotated) of the earlier positions
            k = ops.cat([layer_past[0], k], dim=2)  # (B, nkv, T_past + T, hd)
            v = ops.cat([layer_past[1], v], dim=2)
        present = (k, v)  # the cache keeps the n_kv heads only
        if self.n_kv != self.n_head:  # each key/value head serves n_head / n_kv query heads
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)  # (B, nh, T_past + T, hd)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=is_causal,
                                           dropout_p=self.dropout_p if self.training else 0.0)  # (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.hd)
        return self.o_proj(y), present


class MLP(nn.Module):
    """SwiGLU: a SiLU-gated linear unit, down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModernConfig):
        super().__init__()
        C, H, b = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = nn.Linear(C, H, bias=b)
        self.up_proj = nn.Linear(C, H, bias=b)
        self.down_proj = nn.Linear(H, C, bias=b)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ModernConfig):
        super().__init__()
        self.input_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, bias=None, is_causal=False, layer_past=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, is_causal, layer_past)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class ModernModel(nn.Module):
    """Token embedding, the decoder layers and the final norm: ids -> hidden states (B, T, C)."""

    def __init__(self, config: ModernConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing, self.checkpoint_kwargs = False, {}  # gradient_checkpointing_enable()
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, ids: np.ndarray, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache=False, output_hidden_states=False):
        B, T = ids.shape
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if position_ids is None:
            position_ids = np.arange(past, past + T, dtype=np.int64)[None]  # (1, T)
        position_ids = np.asarray(position_ids.data if isinstance(position_ids, Tensor) else position_ids)
        dtype = self.embed_tokens.weight.dtype
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta, dtype)
        bias, is_causal = attention_bias(attention_mask, past, T, dtype)
        x = self.embed_tokens(ops.tensor(ids))  # (B, T, C)
        hidden, presents = [], []
        recompute = checkpointing(self) and past_key_values is None and not use_cache
        for i, layer in enumerate(self.layers):
            hidden.append(x)
            if recompute:  # keep x only; the layer's activations are recomputed in backward
                x, present = checkpoint(lambda h, f=layer: f(h, cos, sin, bias, is_causal)[0], x,
                                        **self.checkpoint_kwargs), None
            else:
                x, present = layer(x, cos, sin, bias, is_causal,
                                   None if past_key_values is None else past_key_values[i])
            presents.append(present)
        x = self.norm(x)
        hidden.append(x)
        return x, (tuple(presents) if use_cache else None), (tuple(hidden) if output_hidden_states else None)


class ModernTransformer(GradientCheckpointingMixin, GenerationMixin, nn.Module):
    """The decoder with its output head: ids (B, T) -> next-token logits (B, T, vocab_size).

    Loads and saves the ``LlamaForCausalLM`` layout (``LlamaForCausalLM`` is an alias).
    """

    def __init__(self, config: ModernConfig):
        super().__init__()
        self.config = config
        self.max_positions = None  # RoPE has no table to run off the end of
        self.model = ModernModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self._init_weights()

    def _init_weights(self) -> None:
        """Llama's initialisation: N(0, 0.02) for every matrix, zero biases, unit norm gains."""
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, 0.0, self.config.initializer_range)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, labels=None,
                use_cache=None, output_hidden_states=False, logits_to_keep: int = 0) -> CausalLMOutputWithPast:
        """As :meth:`GPT2LMHeadModel.forward`: ``attention_mask`` (B, T_past + T), 1 = token, 0 = padding."""
        ids = token_ids(input_ids, self.config.vocab_size, "ModernTransformer")
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        x, presents, hidden = self.model(ids, attention_mask, position_ids, past_key_values, use_cache,
                                         output_hidden_states)
        logits, loss = head_logits_and_loss(self.lm_head, x, labels, logits_to_keep)
        return CausalLMOutputWithPast(logits=logits, loss=loss, past_key_values=presents, hidden_states=hidden)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Parameter groups with weight decay on the 2-D weights (matmuls, embeddings) only, (not the norm gains):
        ``optim.AdamW(model.optimizer_groups(0.1), lr=6e-4, betas=(0.9, 0.95))``. (A model does not
        build its optimizer: optimizers belong to the training layer.)"""
        return matrix_decay_groups(self, weight_decay)

    # -- the Hugging Face directory layout ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, dtype=None) -> ModernTransformer:
        """Load a ``LlamaForCausalLM`` directory (config.json + model.safetensors); eval mode."""
        model = cls(ModernConfig.from_dict(read_config(directory)))
        arrays = {k: v for k, v in load_safetensors_dir(directory).items() if not k.endswith("rotary_emb.inv_freq")}
        return load_causal_lm(model, arrays, directory, dtype)

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads as LlamaForCausalLM."""
        save_causal_lm(self, directory)


LlamaConfig = ModernConfig
LlamaForCausalLM = ModernTransformer
