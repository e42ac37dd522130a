"""A Flamingo-style vision-language model in the ``IdeficsForVisionText2Text`` layout.

Flamingo (Alayrac et al. 2022) turns a frozen language model into one that
reads images, adding two trained parts:

1. A **perceiver resampler**: a few learned latent vectors cross-attend to a
   vision encoder's patch features (and to themselves), so every image
   becomes ``n_latents`` vectors however many patches it has.
2. **Gated cross-attention** layers interleaved before the LM's layers:
   the text attends to the image latents, and the result is added through
   ``tanh(alpha)``, a gate initialised at alpha = 0, so at the start of
   training the model is exactly the frozen LM, and the gates open as
   the new layers learn something worth adding:

       h = h + tanh(alpha_cross_attn) * cross_attn(rmsnorm(h), images)
       h = h + tanh(alpha_dense)      * mlp(rmsnorm(h))

The language model is the Llama-style decoder of :mod:`neural_arch.models.modern`
(frozen by ``freeze_text_layers``), the vision encoder is CLIP's ViT
(:mod:`neural_arch.models.clip`, frozen by ``freeze_vision_layers``). Tensor
names and config fields are transformers' Idefics ones
(``model.gated_cross_attn_layers.N.alpha_cross_attn``,
``model.perceiver_resampler.blocks.N.0.q_proj.weight``, ...).

    model = IdeficsForVisionText2Text.from_pretrained("path/to/idefics")
    out = model(ids, pixel_values=images, image_attention_mask=mask)   # images (B, n_images, C, H, W)

``image_attention_mask`` (B, T, n_images): 1 where token t may see image i.
Tokens that see no image get no cross-attention at all. There is no
key/value cache: each call runs the whole sequence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.autograd import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.models import hf
from neural_arch.models.clip import CLIPVisionConfig, CLIPVisionTransformer
from neural_arch.models.generation import (
    CausalLMOutputWithPast,
    attention_bias,
    causal_lm_loss,
    position_ids_from_mask,
    token_ids,
)
from neural_arch.models.modern import MLP, DecoderLayer, ModernConfig, rope_cos_sin

__all__ = ["IdeficsConfig", "IdeficsForVisionText2Text", "IdeficsGatedCrossAttentionLayer", "IdeficsPerceiverResampler"]


@dataclass
class IdeficsConfig:
    """``transformers.IdeficsConfig``'s fields; ``vision_config`` / ``perceiver_config`` are dicts as in config.json."""

    vocab_size: int = 32000
    additional_vocab_size: int = 0
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    dropout: float = 0.0
    initializer_range: float = 0.02
    alpha_initializer: str = "zeros"
    alphas_initializer_range: float = 0.0
    alpha_type: str = "float"
    rms_norm_eps: float = 1e-6
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    cross_layer_interval: int = 1
    qk_layer_norms: bool = False
    freeze_text_layers: bool = True
    freeze_lm_head: bool = False
    freeze_vision_layers: bool = True
    use_resampler: bool = False
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    vision_config: dict = field(default_factory=dict)
    perceiver_config: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"IdeficsConfig: hidden_size ({self.hidden_size}) must be divisible by "
                              f"num_attention_heads ({self.num_attention_heads})")
        if self.alpha_type not in ("float", "vector"):
            raise ConfigError(f"IdeficsConfig: alpha_type must be 'float' or 'vector', got {self.alpha_type!r}")
        if self.alpha_initializer not in ("zeros", "ones", "normal", "gaussian", "random"):
            raise ConfigError(f"IdeficsConfig: alpha_initializer {self.alpha_initializer!r} is not one of "
                              "zeros, ones, normal")
        if not 1 <= self.cross_layer_interval <= self.num_hidden_layers:
            raise ConfigError(f"IdeficsConfig: cross_layer_interval must lie in [1, num_hidden_layers], "
                              f"got {self.cross_layer_interval}")
        v = {"embed_dim": 768, "image_size": 224, "intermediate_size": 5120, "patch_size": 14,
             "num_hidden_layers": 32, "num_attention_heads": 16, "num_channels": 3, "hidden_act": "gelu",
             "layer_norm_eps": 1e-5, "attention_dropout": 0.0}
        self.vision_config = {**v, **{k: val for k, val in self.vision_config.items() if k in v}}
        p = {"resampler_n_latents": 64, "resampler_depth": 6, "resampler_n_heads": 16, "resampler_head_dim": 96,
             "qk_layer_norms_perceiver": False}
        self.perceiver_config = {**p, **{k: val for k, val in self.perceiver_config.items() if k in p}}

    def text_config(self) -> ModernConfig:
        """The language model's hyperparameters as the Llama decoder reads them."""
        return ModernConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                            intermediate_size=self.intermediate_size, num_hidden_layers=self.num_hidden_layers,
                            num_attention_heads=self.num_attention_heads, rms_norm_eps=self.rms_norm_eps,
                            rope_theta=self.rope_theta, attention_dropout=self.dropout)

    def clip_vision_config(self) -> CLIPVisionConfig:
        v = self.vision_config
        return CLIPVisionConfig(hidden_size=v["embed_dim"], intermediate_size=v["intermediate_size"],
                                num_hidden_layers=v["num_hidden_layers"], num_attention_heads=v["num_attention_heads"],
                                num_channels=v["num_channels"], image_size=v["image_size"],
                                patch_size=v["patch_size"], hidden_act=v["hidden_act"],
                                layer_norm_eps=v["layer_norm_eps"], attention_dropout=v["attention_dropout"])

    @classmethod
    def from_dict(cls, d: dict) -> IdeficsConfig:
        """From an Idefics ``config.json`` (rope_theta may sit in ``rope_parameters``)."""
        d = dict(d)
        rope = d.get("rope_parameters") or {}
        if rope.get("rope_type", "default") != "default":
            raise ConfigError(f"IdeficsConfig: rope {rope!r} is not supported (only the default RoPE)")
        if "rope_theta" in rope:
            d["rope_theta"] = rope["rope_theta"]
        if d.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"IdeficsConfig: hidden_act {d['hidden_act']!r} is not supported (SwiGLU uses silu)")
        for key in ("freeze_text_module_exceptions", "freeze_vision_module_exceptions"):
            if d.get(key):
                raise ConfigError(f"IdeficsConfig: {key} is not supported; freeze or unfreeze whole parts")
        return hf.config_from_dict(cls, d)

    def to_dict(self) -> dict:
        """The ``config.json`` dict that ``transformers.IdeficsConfig`` reads."""
        d = asdict(self)
        d.pop("rope_theta")
        return {**d, "rope_parameters": {"rope_theta": self.rope_theta, "rope_type": "default"},
                "hidden_act": "silu", "tie_word_embeddings": False, "model_type": "idefics",
                "architectures": ["IdeficsForVisionText2Text"], "dtype": "float32",
                "vision_config": {**self.vision_config, "model_type": "idefics_vision"},
                "perceiver_config": {**self.perceiver_config, "use_resampler": self.use_resampler,
                                     "model_type": "idefics_perciever"}}


# -- the perceiver resampler -------------------------------------------------------------------------
class IdeficsPerceiverAttention(nn.Module):
    """Latents attend to [context; latents]: q from the latents, k and v from both."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, qk_layer_norms: bool):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.context_layer_norm = nn.LayerNorm(dim)
        self.latents_layer_norm = nn.LayerNorm(dim)
        if qk_layer_norms:
            self.q_layer_norm = nn.LayerNorm(head_dim)
            self.k_layer_norm = nn.LayerNorm(head_dim)
        self.qk_layer_norms = qk_layer_norms
        self.q_proj = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.output_proj = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, context, latents):
        context, latents = self.context_layer_norm(context), self.latents_layer_norm(latents)
        B = context.shape[0]
        both = ops.cat([context, latents], dim=-2)  # (B, S + L, D)
        q, k, v = self.q_proj(latents), self.k_proj(both), self.v_proj(both)
        q, k, v = (x.reshape(B, x.shape[1], self.n_heads, self.head_dim).transpose(1, 2) for x in (q, k, v))
        if self.qk_layer_norms:
            q, k = self.q_layer_norm(q), self.k_layer_norm(k)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, L, hd)
        return self.output_proj(y.transpose(1, 2).flatten(-2))


class IdeficsPerceiverMLP(nn.Module):
    """LayerNorm, then a ReLU MLP: c_proj(relu(fc(ln(x))))."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, hidden, bias=False)
        self.act = nn.ReLU()
        self.c_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.c_proj(self.act(self.fc(self.ln(x))))


class IdeficsPerceiverResampler(nn.Module):
    """(B, S, D) patch features -> (B, n_latents, D): ``depth`` blocks of latent cross-attention + MLP."""

    def __init__(self, dim: int, depth: int, n_heads: int, head_dim: int, n_latents: int, qk_layer_norms: bool):
        super().__init__()
        self.latents = nn.Parameter(ops.randn(n_latents, dim))
        self.blocks = nn.ModuleList([nn.ModuleList([IdeficsPerceiverAttention(dim, n_heads, head_dim, qk_layer_norms),
                                                    IdeficsPerceiverMLP(dim, 4 * dim)]) for _ in range(depth)])
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, context):
        latents = self.latents.unsqueeze(0).expand(context.shape[0], -1, -1)  # (B, L, D)
        for attn, mlp in self.blocks:
            latents = attn(context, latents) + latents
            latents = mlp(latents) + latents
        return self.layer_norm(latents)


# -- gated cross-attention ---------------------------------------------------------------------------
class IdeficsCrossAttention(nn.Module):
    """Text queries (B, T, C) over image keys/values (B, S, D_vision); no positions, no causal mask."""

    def __init__(self, config: IdeficsConfig):
        super().__init__()
        C, Dv = config.hidden_size, config.vision_config["embed_dim"]
        self.n_head, self.hd = config.num_attention_heads, C // config.num_attention_heads
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(Dv, C, bias=False)
        self.v_proj = nn.Linear(Dv, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.qk_layer_norms = config.qk_layer_norms
        if config.qk_layer_norms:
            self.q_layer_norm = nn.RMSNorm(self.hd, eps=config.rms_norm_eps)
            self.k_layer_norm = nn.RMSNorm(self.hd, eps=config.rms_norm_eps)
        self.dropout_p = config.dropout

    def forward(self, x, images, bias):
        B, T, _ = x.shape
        S = images.shape[1]
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_proj(images).view(B, S, self.n_head, self.hd).transpose(1, 2)  # (B, nh, S, hd)
        v = self.v_proj(images).view(B, S, self.n_head, self.hd).transpose(1, 2)
        if self.qk_layer_norms:
            q, k = self.q_layer_norm(q), self.k_layer_norm(k)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout_p if self.training else 0.0)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.hd))


class IdeficsGatedCrossAttentionLayer(nn.Module):
    """h + tanh(alpha_cross_attn) * xattn(norm(h)), then h + tanh(alpha_dense) * mlp(norm(h))."""

    def __init__(self, config: IdeficsConfig):
        super().__init__()
        C = config.hidden_size
        self.cross_attn = IdeficsCrossAttention(config)
        self.mlp = MLP(config.text_config())
        self.input_layernorm = nn.RMSNorm(C, eps=config.rms_norm_eps)
        self.post_attention_layernorm = nn.RMSNorm(C, eps=config.rms_norm_eps)
        shape = (1,) if config.alpha_type == "float" else (1, 1, C)
        self.alpha_cross_attn = nn.Parameter(ops.zeros(*shape))
        self.alpha_dense = nn.Parameter(ops.zeros(*shape))
        if config.alpha_initializer == "ones":
            nn.init.ones_(self.alpha_cross_attn)
            nn.init.ones_(self.alpha_dense)
        elif config.alpha_initializer != "zeros":
            nn.init.normal_(self.alpha_cross_attn, 0.0, config.alphas_initializer_range)
            nn.init.normal_(self.alpha_dense, 0.0, config.alphas_initializer_range)

    def forward(self, h, images, bias, gate):
        """gate (B, T, 1): 0 for tokens that see no image (their cross-attention output is dropped)."""
        a = self.cross_attn(self.input_layernorm(h), images, bias) * gate
        h = h + self.alpha_cross_attn.tanh() * a
        return h + self.alpha_dense.tanh() * self.mlp(self.post_attention_layernorm(h))


# -- embeddings and head with extra (always trained) rows -------------------------------------------
class IdeficsDecoupledEmbedding(nn.Module):
    """Rows [0, V) from ``weight`` (frozen with the LM), rows [V, V + A) from ``additional_embedding``."""

    def __init__(self, vocab: int, additional: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(ops.randn(vocab, dim))
        self.additional_embedding = nn.Embedding(additional, dim) if additional else None

    def forward(self, ids):
        table = self.weight if self.additional_embedding is None else ops.cat(
            [self.weight, self.additional_embedding.weight], dim=0)
        return F.embedding(ops.tensor(ids), table)


class IdeficsDecoupledLinear(nn.Module):
    """Logits over [0, V) from ``weight`` and over the A extra tokens from ``additional_fc``."""

    def __init__(self, dim: int, vocab: int, additional: int):
        super().__init__()
        self.weight = nn.Parameter(ops.randn(vocab, dim))
        self.additional_fc = nn.Linear(dim, additional, bias=False) if additional else None

    def forward(self, x):
        y = F.linear(x, self.weight)
        return y if self.additional_fc is None else ops.cat([y, self.additional_fc(x)], dim=-1)


# -- the model ---------------------------------------------------------------------------------------
class IdeficsModel(nn.Module):
    """Embeddings, vision encoder, resampler, decoder layers with gated cross-attention before them."""

    def __init__(self, config: IdeficsConfig):
        super().__init__()
        self.config = config
        text = config.text_config()
        self.embed_tokens = IdeficsDecoupledEmbedding(config.vocab_size, config.additional_vocab_size,
                                                      config.hidden_size)
        self.vision_model = CLIPVisionTransformer(config.clip_vision_config())
        if config.use_resampler:
            p = config.perceiver_config
            self.perceiver_resampler = IdeficsPerceiverResampler(
                config.vision_config["embed_dim"], p["resampler_depth"], p["resampler_n_heads"],
                p["resampler_head_dim"], p["resampler_n_latents"], p["qk_layer_norms_perceiver"])
        self.layers = nn.ModuleList([DecoderLayer(text) for _ in range(config.num_hidden_layers)])
        n_cross = config.num_hidden_layers // config.cross_layer_interval
        self.gated_cross_attn_layers = nn.ModuleList([IdeficsGatedCrossAttentionLayer(config) for _ in range(n_cross)])
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def image_features(self, pixel_values):
        """(B, n_images, C, H, W) -> (B, n_images * tokens per image, D_vision)."""
        if pixel_values.ndim != 5:
            raise ShapeError(f"Idefics: pixel_values must be (batch, n_images, C, H, W), "
                             f"got {shape_str(pixel_values.shape)}")
        B, n = pixel_values.shape[:2]
        feats = self.vision_model(pixel_values.flatten(0, 1)).last_hidden_state  # (B*n, patches+1, D)
        if self.config.use_resampler:
            feats = self.perceiver_resampler(feats)  # (B*n, n_latents, D)
        return feats.reshape(B, n * feats.shape[1], feats.shape[2])

    def forward(self, ids, pixel_values, image_attention_mask, attention_mask=None, position_ids=None):
        B, T = ids.shape
        images = self.image_features(pixel_values)
        n_images = pixel_values.shape[1]
        per_image = images.shape[1] // n_images
        img_mask = np.asarray(getattr(image_attention_mask, "data", image_attention_mask))
        if img_mask.shape != (B, T, n_images):
            raise ShapeError(f"Idefics: image_attention_mask must be (batch, seq_len, n_images) = "
                             f"{shape_str((B, T, n_images))}, got {shape_str(img_mask.shape)}")
        dtype = np.dtype(self.norm.weight.dtype)
        seen = np.repeat(img_mask != 0, per_image, axis=-1)[:, None]  # (B, 1, T, S): token t may see latent s
        cross_bias = ops.tensor(np.where(seen, dtype.type(0), np.finfo(dtype).min).astype(dtype))
        gate = ops.tensor(seen[:, 0].any(-1, keepdims=True).astype(dtype))  # (B, T, 1)
        if position_ids is None:
            position_ids = np.arange(T)[None] if attention_mask is None else position_ids_from_mask(
                np.asarray(getattr(attention_mask, "data", attention_mask)))
        cos, sin = rope_cos_sin(np.asarray(position_ids), self.config.hidden_size // self.config.num_attention_heads,
                                self.config.rope_theta, dtype)
        bias, is_causal = attention_bias(attention_mask, 0, T, dtype)
        h = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            if i % self.config.cross_layer_interval == 0:
                h = self.gated_cross_attn_layers[i // self.config.cross_layer_interval](h, images, cross_bias, gate)
            h, _ = layer(h, cos, sin, bias, is_causal)
        return self.norm(h)


class IdeficsForVisionText2Text(nn.Module):
    """Images + text -> next-token logits (B, T, vocab_size + additional_vocab_size)."""

    def __init__(self, config: IdeficsConfig):
        super().__init__()
        self.config = config
        self.model = IdeficsModel(config)
        self.lm_head = IdeficsDecoupledLinear(config.hidden_size, config.vocab_size, config.additional_vocab_size)
        for name, p in self.named_parameters():
            if name.endswith(("norm.weight", ".ln.weight", "layrnorm.weight")) or (
                    "layer_norm" in name and name.endswith("weight")):
                nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "alpha" not in name and not name.endswith("latents"):
                nn.init.normal_(p, 0.0, config.initializer_range)
        self.freeze_relevant_params()

    def freeze_relevant_params(self) -> None:
        """Freeze what the config says (the LM and the vision encoder by default), as transformers does."""
        c = self.config
        if c.freeze_text_layers:
            for module in (self.model.layers, self.model.norm):
                module.requires_grad_(False)
            self.model.embed_tokens.weight.requires_grad_(False)
        if c.freeze_vision_layers:
            self.model.vision_model.requires_grad_(False)
        if c.freeze_lm_head:
            self.lm_head.weight.requires_grad_(False)

    def gates(self) -> dict:
        """tanh(alpha) of every gate: how far each cross-attention / dense branch is open (0 = shut)."""
        out = {}
        for i, layer in enumerate(self.model.gated_cross_attn_layers):
            out[f"{i}.cross_attn"] = float(np.abs(np.tanh(layer.alpha_cross_attn.detach().numpy())).mean())
            out[f"{i}.dense"] = float(np.abs(np.tanh(layer.alpha_dense.detach().numpy())).mean())
        return out

    def forward(self, input_ids, pixel_values=None, image_attention_mask=None, attention_mask=None,
                position_ids=None, labels=None) -> CausalLMOutputWithPast:
        """``pixel_values`` (B, n_images, C, H, W); ``image_attention_mask`` (B, T, n_images), default all ones."""
        ids = token_ids(input_ids, self.config.vocab_size + self.config.additional_vocab_size,
                        "IdeficsForVisionText2Text")
        if pixel_values is None:
            raise ShapeError("IdeficsForVisionText2Text: pixel_values (batch, n_images, C, H, W) is required")
        pixel_values = pixel_values if isinstance(pixel_values, Tensor) else ops.tensor(pixel_values)
        if image_attention_mask is None:
            image_attention_mask = np.ones(ids.shape + (pixel_values.shape[1],), np.int64)
        h = self.model(ids, pixel_values, image_attention_mask, attention_mask, position_ids)
        logits = self.lm_head(h)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return CausalLMOutputWithPast(logits=logits, loss=loss)

    # -- the Hugging Face directory layout ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, dtype=None) -> IdeficsForVisionText2Text:
        """Load an ``IdeficsForVisionText2Text`` directory (config.json + model.safetensors); eval mode."""
        model = cls(IdeficsConfig.from_dict(hf.read_config(directory)))
        arrays = {k: v for k, v in hf.load_safetensors_dir(directory).items() if "rotary_emb" not in k}
        return hf.load_causal_lm(model, arrays, directory, dtype)

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads as IdeficsForVisionText2Text."""
        hf.save_pretrained_dir(directory, self.state_dict(), self.config.to_dict())
