"""Vision Transformer (Dosovitskiy et al., 2020) with Hugging Face ``ViTModel`` tensor names.

An image is cut into ``patch_size`` squares, each projected to a
``hidden_size`` vector by a strided convolution; a learned class token is
prepended, learned position embeddings are added, and a stack of pre-LN
transformer layers mixes the tokens. The class token's final state feeds
the classifier::

    pixel_values (B, C, H, W)
    patch_embeddings.projection (conv k=s=P) -> (B, N, D), N = (H/P)(W/P)
    cat(cls_token, .) + position_embeddings  -> (B, N+1, D)
    layer x L:  h = h + attn(layernorm_before(h));  h = h + mlp(layernorm_after(h))
    layernorm                                -> last_hidden_state (B, N+1, D)
    classifier(last_hidden_state[:, 0])      -> logits (B, num_labels)

Module names equal the Hugging Face checkpoint's (``vit.embeddings.cls_token``,
``vit.encoder.layer.0.attention.attention.query.weight``,
``vit.encoder.layer.0.intermediate.dense.weight``, ``vit.layernorm.weight``,
``classifier.weight`` ...), so ``from_pretrained`` reads a directory written
by ``transformers``' ``save_pretrained`` and ours writes one it reads.

``output_attentions=True`` returns every layer's attention probabilities
``(B, heads, N+1, N+1)``; ``attention_rollout`` combines them into one map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.models import hf
from neural_arch.models._checkpointing import GradientCheckpointingMixin, checkpoint, checkpointing
from neural_arch.models.hf import config_from_dict, get_activation

__all__ = ["ViTConfig", "ViTModel", "ViTForImageClassification", "ModelOutput", "attention_rollout"]


# -- outputs and config ------------------------------------------------------------------------

class ModelOutput(dict):
    """A dict whose keys are also attributes (``out.logits``, ``out["logits"]``), like transformers'.

    Only the fields that were computed are present; a missing one reads as None.
    """

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name, value):
        self[name] = value


@dataclass
class ViTConfig:
    """The fields of Hugging Face's ``ViTConfig`` that define the architecture (same names, same defaults)."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    qkv_bias: bool = True
    encoder_stride: int = 16
    pooler_output_size: int | None = None
    pooler_act: str = "tanh"
    num_labels: int = 2
    id2label: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.pooler_output_size is None:
            self.pooler_output_size = self.hidden_size
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"ViTConfig: hidden_size {self.hidden_size} is not divisible by "
                              f"num_attention_heads {self.num_attention_heads}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"ViTConfig: image_size {self.image_size} is not a multiple of patch_size "
                              f"{self.patch_size}")
        get_activation(self.hidden_act)
        if self.id2label:  # JSON keys are strings; the label count follows the mapping, as in transformers
            self.id2label = {int(k): v for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)

    @classmethod
    def from_dict(cls, d: dict) -> ViTConfig:
        """Read a ``config.json`` dict; fields we do not model (dtype, architectures, ...) are ignored."""
        return config_from_dict(cls, d)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["id2label"] = {str(i): self.id2label.get(i, f"LABEL_{i}") for i in range(self.num_labels)}
        d["label2id"] = {v: int(k) for k, v in d["id2label"].items()}
        d.pop("num_labels")  # transformers derives it from id2label
        d["model_type"] = "vit"
        return d


# -- embeddings --------------------------------------------------------------------------------

class ViTPatchEmbeddings(nn.Module):
    """(B, C, H, W) -> (B, N, D): a conv with kernel = stride = patch_size, then flatten the grid."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.num_patches = (config.image_size // config.patch_size) ** 2
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, kernel_size=config.patch_size,
                                    stride=config.patch_size)

    def forward(self, pixel_values):
        if len(pixel_values.shape) != 4 or pixel_values.shape[1] != self.num_channels:
            raise ShapeError(f"ViT: expected pixel_values (B, {self.num_channels}, H, W), "
                             f"got {shape_str(pixel_values.shape)}")
        if tuple(pixel_values.shape[2:]) != (self.image_size, self.image_size):
            raise ShapeError(f"ViT: input image size {tuple(pixel_values.shape[2:])} does not match the model's "
                             f"({self.image_size}, {self.image_size}); resize the images (position embeddings "
                             f"are learned per position, interpolation is not implemented)")
        return self.projection(pixel_values).flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, N, D)


class ViTEmbeddings(nn.Module):
    """Patch embeddings, the class token in front, learned position embeddings added."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        d = config.hidden_size
        self.cls_token = nn.Parameter(ops.zeros(1, 1, d))
        self.patch_embeddings = ViTPatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(ops.zeros(1, self.patch_embeddings.num_patches + 1, d))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixel_values):
        x = self.patch_embeddings(pixel_values)                     # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)             # (B, 1, D)
        x = ops.cat([cls, x], dim=1) + self.position_embeddings      # (B, N+1, D)
        return self.dropout(x)


# -- encoder -----------------------------------------------------------------------------------

def multi_head_attention(q, k, v, num_heads: int, attn_mask=None, dropout_p: float = 0.0,
                         need_weights: bool = False):
    """softmax(Q K^T / sqrt(d_head) + mask) V over ``num_heads`` heads; shared by ViT and CLIP.

    ``q, k, v``: (B, T, D). ``attn_mask``: an additive float mask broadcastable to
    (B, heads, T, T) (0 keeps, -inf drops). Returns ``(out (B, T, D), probs or None)``.
    With ``need_weights`` the probabilities are formed explicitly so they can be
    returned; otherwise the fused ``scaled_dot_product_attention`` runs.
    """
    b, t, d = q.shape
    hd = d // num_heads

    def heads(x):  # (B, T, D) -> (B, H, T, hd)
        return x.reshape(b, t, num_heads, hd).transpose(1, 2)

    q, k, v = heads(q), heads(k), heads(v)
    probs = None
    if need_weights:
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))   # (B, H, T, T)
        if attn_mask is not None:
            scores = scores + attn_mask
        probs = F.softmax(scores, dim=-1)
        out = F.dropout(probs, p=dropout_p, training=dropout_p > 0) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    return out.transpose(1, 2).reshape(b, t, d), probs


class ViTSelfAttention(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        d = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.query = nn.Linear(d, d, bias=config.qkv_bias)
        self.key = nn.Linear(d, d, bias=config.qkv_bias)
        self.value = nn.Linear(d, d, bias=config.qkv_bias)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(self, x, output_attentions: bool = False):
        p = self.dropout_prob if self.training else 0.0
        return multi_head_attention(self.query(x), self.key(x), self.value(x), self.num_attention_heads,
                                    dropout_p=p, need_weights=output_attentions)


class ViTSelfOutput(nn.Module):
    """The attention's output projection (the residual is added by ``ViTLayer``)."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x):
        return self.dropout(self.dense(x))


class ViTAttention(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.attention = ViTSelfAttention(config)
        self.output = ViTSelfOutput(config)

    def forward(self, x, output_attentions: bool = False):
        out, probs = self.attention(x, output_attentions)
        return self.output(out), probs


class ViTIntermediate(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class ViTOutput(nn.Module):
    """The MLP's second projection plus the residual."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.dropout(self.dense(x)) + residual


class ViTLayer(nn.Module):
    """Pre-LN block: ``h = x + attn(ln1(x)); out = h + mlp(ln2(h))``."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.attention = ViTAttention(config)
        self.intermediate = ViTIntermediate(config)
        self.output = ViTOutput(config)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, output_attentions: bool = False):
        attn, probs = self.attention(self.layernorm_before(x), output_attentions)
        h = attn + x
        return self.output(self.intermediate(self.layernorm_after(h)), h), probs


class ViTEncoder(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.layer = nn.ModuleList([ViTLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing, self.checkpoint_kwargs = False, {}  # gradient_checkpointing_enable()

    def forward(self, x, output_attentions: bool = False, output_hidden_states: bool = False):
        hidden_states, attentions = [x] if output_hidden_states else None, [] if output_attentions else None
        recompute = checkpointing(self)
        for layer in self.layer:
            if recompute:  # keep x only; the layer's activations are recomputed in backward
                x, probs = checkpoint(layer, x, output_attentions, **self.checkpoint_kwargs)
            else:
                x, probs = layer(x, output_attentions)
            if output_attentions:
                attentions.append(probs)
            if output_hidden_states:
                hidden_states.append(x)
        return x, hidden_states, attentions


class ViTPooler(nn.Module):
    """``tanh(dense(h[:, 0]))``: the class token through one more layer (ViTModel only)."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.pooler_output_size)
        self.activation = get_activation(config.pooler_act)

    def forward(self, h):
        return self.activation(self.dense(h[:, 0]))


# -- models ------------------------------------------------------------------------------------

class _PretrainedMixin(GradientCheckpointingMixin):
    """``from_pretrained`` / ``save_pretrained`` in the Hugging Face layout, shared by the ViT models."""

    config_class = ViTConfig
    architecture = ""

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """Build the model from ``directory/config.json`` and load ``model.safetensors`` (strict)."""
        config = cls.config_class.from_dict(hf.read_config(directory))
        model = cls(config, **kwargs)
        model.load_state_dict(hf.load_safetensors_dir(directory), strict=True)
        return model.eval()

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers`` and ``from_pretrained`` read."""
        config = self.config.to_dict()
        config["architectures"] = [self.architecture]
        hf.save_pretrained_dir(directory, self.state_dict(), config)


def _init_vit_weights(model: nn.Module, std: float) -> None:
    """Hugging Face's ViT init: truncated normal(0, std) for linear/conv/embeddings, LayerNorm 1/0."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, ViTEmbeddings):
            nn.init.trunc_normal_(m.position_embeddings, std=std)
            nn.init.trunc_normal_(m.cls_token, std=std)


class ViTModel(_PretrainedMixin, nn.Module):
    """The ViT encoder: ``out.last_hidden_state`` (B, N+1, D), ``out.pooler_output`` if it has a pooler."""

    architecture = "ViTModel"

    def __init__(self, config: ViTConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = ViTEmbeddings(config)
        self.encoder = ViTEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = ViTPooler(config) if add_pooling_layer else None
        _init_vit_weights(self, config.initializer_range)

    def forward(self, pixel_values, output_attentions: bool = False, output_hidden_states: bool = False):
        x = self.embeddings(pixel_values)
        x, hidden_states, attentions = self.encoder(x, output_attentions, output_hidden_states)
        x = self.layernorm(x)
        out = ModelOutput(last_hidden_state=x)
        if self.pooler is not None:
            out.pooler_output = self.pooler(x)
        if output_hidden_states:
            out.hidden_states = tuple(hidden_states)
        if output_attentions:
            out.attentions = tuple(attentions)
        return out


class ViTForImageClassification(_PretrainedMixin, nn.Module):
    """ViT + a linear classifier on the class token: ``out.logits`` (B, num_labels), ``out.loss`` with labels."""

    architecture = "ViTForImageClassification"

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.vit = ViTModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        _init_vit_weights(self.classifier, config.initializer_range)

    def forward(self, pixel_values, labels=None, output_attentions: bool = False,
                output_hidden_states: bool = False):
        out = self.vit(pixel_values, output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        out.logits = self.classifier(out.last_hidden_state[:, 0])
        if labels is not None:
            out.loss = F.cross_entropy(out.logits, labels)
        return out


# -- attention rollout -------------------------------------------------------------------------

def attention_rollout(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): how much each patch flows into the class token.

    Per layer, fuse the heads (mean or max), drop the weakest ``discard_ratio``
    of links, add the identity for the residual path and renormalise rows:
    ``A_l = normalize(0.5 * fuse(attn_l) + 0.5 * I)``. The rollout is the
    product ``A_L ... A_1``; row 0 (the class token), without column 0, is the
    map over patches.

    Args:
        attentions: one ``(B, H, T, T)`` array or Tensor per layer (``output_attentions=True``).
    Returns:
        ``(B, h, w)`` float array over the patch grid, each map scaled to max 1.
    """
    mats = [a.detach().numpy() if hasattr(a, "detach") else np.asarray(a) for a in attentions]
    if not mats or any(m.ndim != 4 or m.shape[-1] != m.shape[-2] for m in mats):
        raise ShapeError("attention_rollout: expected a non-empty list of (B, heads, T, T) attention maps")
    if head_fusion not in ("mean", "max"):
        raise ConfigError(f"attention_rollout: head_fusion must be 'mean' or 'max', got {head_fusion!r}")
    b, _, t, _ = mats[0].shape
    eye = np.eye(t)
    rollout = np.broadcast_to(eye, (b, t, t)).copy()
    for a in mats:
        fused = a.astype(np.float64).mean(1) if head_fusion == "mean" else a.astype(np.float64).max(1)
        if discard_ratio > 0:
            # zero the weakest links of every row except the class token's self-link
            k = int(fused.shape[-1] * discard_ratio)
            thresh = np.sort(fused, axis=-1)[..., k - 1:k] if k > 0 else -np.inf
            keep = (fused > thresh) | eye.astype(bool)
            fused = fused * keep
        a_hat = 0.5 * fused + 0.5 * eye
        a_hat /= a_hat.sum(-1, keepdims=True)
        rollout = a_hat @ rollout
    cls_to_patches = rollout[:, 0, 1:]                                  # (B, N)
    side = int(round(math.sqrt(cls_to_patches.shape[-1])))
    if side * side != cls_to_patches.shape[-1]:
        raise ShapeError(f"attention_rollout: {cls_to_patches.shape[-1]} patches do not form a square grid")
    maps = cls_to_patches.reshape(b, side, side)
    return maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)
