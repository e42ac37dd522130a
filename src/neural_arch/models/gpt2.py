"""GPT-2, with Hugging Face's module and tensor names, so its checkpoints load as they are.

    model = GPT2LMHeadModel.from_pretrained("path/to/gpt2")     # config.json + model.safetensors
    logits = model(ids).logits                                   # ids: (B, T) int64
    out = model.generate(ids, max_new_tokens=50, do_sample=True, top_k=40)

The architecture (Radford et al. 2019): learned token and position
embeddings; n_layer pre-LayerNorm blocks of causal self-attention and a
4x-wide MLP with the tanh approximation of GELU ("gelu_new"); a final
LayerNorm; an output projection tied to the token embedding.

Hugging Face conventions kept here: the projections are ``Conv1D`` layers
whose weight is stored (in, out), the transpose of ``nn.Linear``'s; names are
``transformer.h.N.attn.c_attn`` etc.; LayerNorm eps is 1e-5.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.autograd import Tensor
from neural_arch.autograd.autocast import is_autocast_enabled
from neural_arch.errors import ConfigError, ShapeError
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

__all__ = ["GPT2Config", "GPT2LMHeadModel", "GPT2Model"]


@dataclass
class GPT2Config:
    """GPT-2's hyperparameters, with the field names of ``transformers.GPT2Config``.

    The defaults are the 124M-parameter GPT-2.
    """

    vocab_size: int = 50257
    n_positions: int = 1024  # the longest sequence (learned position embeddings)
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None  # MLP width; None means 4 * n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None

    # transformers options that change the math; only their default values are supported here
    _FIXED = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
              "reorder_and_upcast_attn": False, "add_cross_attention": False}
    _ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ConfigError(f"GPT2Config: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.activation_function not in self._ACTIVATIONS:
            raise ConfigError(f"GPT2Config: activation_function {self.activation_function!r} is not supported; "
                              f"use one of {sorted(self._ACTIVATIONS)}")
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            if getattr(self, name) < 1:
                raise ConfigError(f"GPT2Config: {name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> GPT2Config:
        """From a ``config.json`` dict; fields we do not use (e.g. summary_*) are ignored."""
        for key, value in cls._FIXED.items():
            if d.get(key, value) != value:
                raise ConfigError(f"GPT2Config: {key}={d[key]!r} is not supported (only {value!r})")
        return config_from_dict(cls, d)

    def to_dict(self) -> dict:
        """The ``config.json`` dict that ``transformers.GPT2Config`` reads."""
        return {**asdict(self), **self._FIXED, "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                "dtype": "float32"}


class Conv1D(nn.Module):
    """Hugging Face's name for a linear layer whose weight is stored (in, out): y = x W + b."""

    def __init__(self, nf: int, nx: int):  # (out, in), transformers' argument order
        super().__init__()
        self.weight = nn.Parameter(ops.empty(nx, nf))
        self.bias = nn.Parameter(ops.zeros(nf))

    def forward(self, x):
        if is_autocast_enabled():  # transformers' addmm(bias, x, W): bias included in the low-precision product
            return F.linear(x, self.weight.mT, self.bias)
        return x @ self.weight + self.bias

    def extra_repr(self) -> str:
        return f"nx={self.weight.shape[0]}, nf={self.weight.shape[1]}"


class GPT2Attention(nn.Module):
    """Causal multi-head self-attention, the three projections fused in ``c_attn``."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = Conv1D(3 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.attn_dropout_p = config.attn_pdrop
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x, bias=None, is_causal=False, layer_past=None):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if layer_past is not None:  # the cached keys and values of the earlier positions
            k = ops.cat([layer_past[0], k], dim=2)  # (B, nh, T_past + T, hs)
            v = ops.cat([layer_past[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=is_causal,
                                           dropout_p=self.attn_dropout_p if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y)), (k, v)


class GPT2MLP(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = Conv1D(inner, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, inner)
        self.approximate = GPT2Config._ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class GPT2Block(nn.Module):
    """Pre-LN residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x, bias=None, is_causal=False, layer_past=None):
        a, present = self.attn(self.ln_1(x), bias, is_causal, layer_past)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT2Model(nn.Module):
    """The transformer without the output head: ids -> final hidden states (B, T, n_embd)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing, self.checkpoint_kwargs = False, {}  # gradient_checkpointing_enable()

    def forward(self, ids: np.ndarray, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache=False, output_hidden_states=False):
        B, T = ids.shape
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if past + T > self.config.n_positions:
            raise ShapeError(f"GPT2: sequence length {past + T} (past {past} + new {T}) exceeds n_positions "
                             f"{self.config.n_positions}, the number of learned position embeddings")
        if position_ids is None:
            position_ids = np.arange(past, past + T, dtype=np.int64)[None]  # (1, T)
        position_ids = np.asarray(position_ids.data if isinstance(position_ids, Tensor) else position_ids)
        bias, is_causal = attention_bias(attention_mask, past, T, self.wte.weight.dtype)
        x = self.drop(self.wte(ops.tensor(ids)) + self.wpe(ops.tensor(position_ids.astype(np.int64))))  # (B, T, C)
        hidden, presents = [], []
        recompute = checkpointing(self) and past_key_values is None and not use_cache
        for i, block in enumerate(self.h):
            hidden.append(x)
            if recompute:  # keep x only; the block's activations are recomputed in backward
                x, present = checkpoint(lambda h, b=block: b(h, bias, is_causal)[0], x, **self.checkpoint_kwargs), None
            else:
                x, present = block(x, bias, is_causal, None if past_key_values is None else past_key_values[i])
            presents.append(present)
        x = self.ln_f(x)
        hidden.append(x)
        return x, (tuple(presents) if use_cache else None), (tuple(hidden) if output_hidden_states else None)


class GPT2LMHeadModel(GradientCheckpointingMixin, GenerationMixin, nn.Module):
    """GPT-2 with its language-modelling head: ids (B, T) -> next-token logits (B, T, vocab_size)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.max_positions = config.n_positions
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix embeds and un-embeds
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms, and the
        projections into the residual stream scaled by 1/sqrt(2 n_layer) (one per attn and mlp)."""
        std = self.config.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.config.n_layer))
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, labels=None,
                use_cache=None, output_hidden_states=False, logits_to_keep: int = 0) -> CausalLMOutputWithPast:
        """``input_ids`` (B, T) int; ``attention_mask`` (B, T_past + T), 1 = token, 0 = padding;
        ``labels`` (B, T) gives the shifted next-token loss; ``logits_to_keep=n`` computes logits
        for the last n positions only (0: all)."""
        ids = token_ids(input_ids, self.config.vocab_size, "GPT2LMHeadModel")
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        x, presents, hidden = self.transformer(ids, attention_mask, position_ids, past_key_values,
                                               use_cache, output_hidden_states)
        logits, loss = head_logits_and_loss(self.lm_head, x, labels, logits_to_keep)
        return CausalLMOutputWithPast(logits=logits, loss=loss, past_key_values=presents, hidden_states=hidden)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Parameter groups with weight decay on the 2-D weights (matmuls, embeddings) only, as nanoGPT:
        ``optim.AdamW(model.optimizer_groups(0.1), lr=6e-4, betas=(0.9, 0.95))``. (A model does not
        build its optimizer: optimizers belong to the training layer.)"""
        return matrix_decay_groups(self, weight_decay)

    # -- the Hugging Face directory layout ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, dtype=None) -> GPT2LMHeadModel:
        """Load ``config.json`` + ``model.safetensors`` as written by ``transformers`` (or by us).

        Accepts both ``GPT2LMHeadModel`` checkpoints and bare ``GPT2Model`` ones (names without the
        ``transformer.`` prefix, as the original ``gpt2`` on the Hub). Returns the model in eval mode.
        """
        model = cls(GPT2Config.from_dict(read_config(directory)))
        arrays = {}
        for name, arr in load_safetensors_dir(directory).items():
            if name.endswith((".attn.bias", ".attn.masked_bias")) and arr.ndim != 1:
                continue  # the causal mask buffers of old checkpoints: we build the mask instead
            if not name.startswith(("transformer.", "lm_head.")):
                name = "transformer." + name
            arrays[name] = arr
        return load_causal_lm(model, arrays, directory, dtype)

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers`` (and we) can load."""
        save_causal_lm(self, directory)
