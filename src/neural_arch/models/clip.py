"""CLIP (Radford et al., 2021) with Hugging Face ``CLIPModel`` tensor names.

Two transformer towers map images and texts into one embedding space;
training pulls each image toward its own caption and away from the others'
(a symmetric cross-entropy over the batch's similarity matrix)::

    pixel_values (B, C, H, W) -> vision_model (ViT, pre_layrnorm, quick_gelu)
        -> post_layernorm(h[:, 0]) -> visual_projection -> image_embeds (B, P)
    input_ids (B', T)         -> text_model (causal transformer)
        -> final_layer_norm(h)[eos position] -> text_projection -> text_embeds (B', P)
    logits_per_text = exp(logit_scale) * normalize(text) @ normalize(image)^T   (B', B)
    logits_per_image = logits_per_text^T

Names follow ``transformers``' checkpoint (``text_model.encoder.layers.0.self_attn.q_proj.weight``,
``vision_model.pre_layrnorm.weight`` - the typo is the checkpoint's -, ``logit_scale`` ...).

Besides the model: ``clip_loss``, ``zero_shot_classifier`` (class embeddings
from prompt templates), ``zero_shot_predict`` and ``retrieval_recall``
(Recall@K both ways).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn, ops
from neural_arch.autograd import Tensor, no_grad
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.models import hf
from neural_arch.models.hf import config_from_dict, get_activation
from neural_arch.models.vit import ModelOutput, multi_head_attention

__all__ = ["CLIPTextConfig", "CLIPVisionConfig", "CLIPConfig", "CLIPModel", "clip_loss",
           "zero_shot_classifier", "zero_shot_predict", "retrieval_recall"]


@dataclass
class CLIPTextConfig:
    """Hugging Face ``CLIPTextConfig``'s architecture fields (same names and defaults)."""

    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    initializer_factor: float = 1.0
    pad_token_id: int = 1
    bos_token_id: int = 49406
    eos_token_id: int = 49407

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"CLIPTextConfig: hidden_size {self.hidden_size} is not divisible by "
                              f"num_attention_heads {self.num_attention_heads}")
        get_activation(self.hidden_act)


@dataclass
class CLIPVisionConfig:
    """Hugging Face ``CLIPVisionConfig``'s architecture fields."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    initializer_factor: float = 1.0

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"CLIPVisionConfig: hidden_size {self.hidden_size} is not divisible by "
                              f"num_attention_heads {self.num_attention_heads}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"CLIPVisionConfig: image_size {self.image_size} is not a multiple of "
                              f"patch_size {self.patch_size}")
        get_activation(self.hidden_act)


@dataclass
class CLIPConfig:
    text_config: CLIPTextConfig = field(default_factory=CLIPTextConfig)
    vision_config: CLIPVisionConfig = field(default_factory=CLIPVisionConfig)
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592  # log(1 / 0.07)

    def __post_init__(self):
        if isinstance(self.text_config, dict):
            self.text_config = config_from_dict(CLIPTextConfig, self.text_config)
        if isinstance(self.vision_config, dict):
            self.vision_config = config_from_dict(CLIPVisionConfig, self.vision_config)

    @classmethod
    def from_dict(cls, d: dict) -> CLIPConfig:
        return config_from_dict(cls, d)

    def to_dict(self) -> dict:
        text = {f.name: getattr(self.text_config, f.name) for f in fields(self.text_config)}
        vision = {f.name: getattr(self.vision_config, f.name) for f in fields(self.vision_config)}
        text["model_type"], vision["model_type"] = "clip_text_model", "clip_vision_model"
        return {"model_type": "clip", "text_config": text, "vision_config": vision,
                "projection_dim": self.projection_dim, "logit_scale_init_value": self.logit_scale_init_value}


# -- the shared encoder ------------------------------------------------------------------------

class CLIPAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.dropout = config.attention_dropout
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, attn_mask=None, output_attentions: bool = False):
        p = self.dropout if self.training else 0.0
        out, probs = multi_head_attention(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.num_heads,
                                          attn_mask=attn_mask, dropout_p=p, need_weights=output_attentions)
        return self.out_proj(out), probs


class CLIPMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.activation_fn = get_activation(config.hidden_act)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x):
        return self.fc2(self.activation_fn(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    """Pre-LN: ``h = x + attn(layer_norm1(x)); out = h + mlp(layer_norm2(h))``."""

    def __init__(self, config):
        super().__init__()
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, attn_mask=None, output_attentions: bool = False):
        attn, probs = self.self_attn(self.layer_norm1(x), attn_mask, output_attentions)
        h = x + attn
        return h + self.mlp(self.layer_norm2(h)), probs


class CLIPEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x, attn_mask=None, output_attentions: bool = False):
        attentions = [] if output_attentions else None
        for layer in self.layers:
            x, probs = layer(x, attn_mask, output_attentions)
            if output_attentions:
                attentions.append(probs)
        return x, attentions


# -- text tower --------------------------------------------------------------------------------

class CLIPTextEmbeddings(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.max_positions = config.max_position_embeddings

    def forward(self, input_ids):
        t = input_ids.shape[-1]
        if t > self.max_positions:
            raise ShapeError(f"CLIP text: sequence length {t} exceeds max_position_embeddings {self.max_positions}; "
                             f"truncate the tokens")
        return self.token_embedding(input_ids) + self.position_embedding.weight[:t]


class CLIPTextTransformer(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def _mask(self, input_ids, attention_mask, dtype):
        """Additive (B, 1, T, T) mask: causal (no look-ahead) and, if given, padding keys removed.

        NOTE: a large finite negative instead of -inf, so a row whose keys are all
        padding gives a uniform (ignored) row rather than NaN.
        """
        b, t = input_ids.shape
        keep = np.tril(np.ones((t, t), dtype=bool))[None, None]              # (1, 1, T, T)
        if attention_mask is not None:
            am = attention_mask.detach().numpy() if hasattr(attention_mask, "detach") else np.asarray(attention_mask)
            if am.shape != (b, t):
                raise ShapeError(f"CLIP text: attention_mask {shape_str(am.shape)} must match input_ids "
                                 f"{shape_str((b, t))}")
            keep = keep & (am[:, None, None, :] != 0)
        neg = np.finfo(dtype).min
        return ops.tensor(np.where(keep, 0.0, neg).astype(dtype))

    def forward(self, input_ids, attention_mask=None, output_attentions: bool = False):
        if len(input_ids.shape) != 2:
            raise ShapeError(f"CLIP text: expected input_ids (B, T), got {shape_str(input_ids.shape)}")
        x = self.embeddings(input_ids)                                        # (B, T, D)
        mask = self._mask(input_ids, attention_mask, x.data.dtype)
        x, attentions = self.encoder(x, mask, output_attentions)
        x = self.final_layer_norm(x)
        ids = input_ids.detach() if isinstance(input_ids, Tensor) else Tensor(np.asarray(input_ids))
        # the pooled state is the end token's, found with ops (not NumPy) so that na.compile can replay it
        if self.config.eos_token_id == 2:
            # legacy configs: the end-of-text token is the largest id in the sequence
            eos = ids.argmax(-1)
        else:
            eos = (ids == self.config.eos_token_id).to(np.int32).argmax(-1)
        pooled = x[np.arange(ids.shape[0]), eos]                              # (B, D)
        return ModelOutput(last_hidden_state=x, pooler_output=pooled, attentions=attentions)


# -- vision tower ------------------------------------------------------------------------------

class CLIPVisionEmbeddings(nn.Module):
    def __init__(self, config: CLIPVisionConfig):
        super().__init__()
        d = config.hidden_size
        self.image_size = config.image_size
        self.num_channels = config.num_channels
        self.class_embedding = nn.Parameter(ops.zeros(d))
        self.patch_embedding = nn.Conv2d(config.num_channels, d, kernel_size=config.patch_size,
                                         stride=config.patch_size, bias=False)
        self.num_positions = (config.image_size // config.patch_size) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, d)

    def forward(self, pixel_values):
        if len(pixel_values.shape) != 4 or tuple(pixel_values.shape[1:]) != (
                self.num_channels, self.image_size, self.image_size):
            raise ShapeError(f"CLIP vision: expected pixel_values (B, {self.num_channels}, {self.image_size}, "
                             f"{self.image_size}), got {shape_str(pixel_values.shape)}")
        x = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)      # (B, N, D)
        cls = self.class_embedding.reshape(1, 1, -1).expand(x.shape[0], 1, -1)
        return ops.cat([cls, x], dim=1) + self.position_embedding.weight        # (B, N+1, D)


class CLIPVisionTransformer(nn.Module):
    def __init__(self, config: CLIPVisionConfig):
        super().__init__()
        self.embeddings = CLIPVisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = CLIPEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixel_values, output_attentions: bool = False):
        x = self.pre_layrnorm(self.embeddings(pixel_values))
        x, attentions = self.encoder(x, None, output_attentions)
        return ModelOutput(last_hidden_state=x, pooler_output=self.post_layernorm(x[:, 0]), attentions=attentions)


# -- the model ---------------------------------------------------------------------------------

def clip_loss(logits_per_text):
    """Symmetric InfoNCE: ``(CE(logits_per_text, arange) + CE(logits_per_text^T, arange)) / 2``."""
    n = logits_per_text.shape[0]
    if len(logits_per_text.shape) != 2 or logits_per_text.shape[1] != n:
        raise ShapeError(f"clip_loss: expected a square (N, N) similarity matrix, got "
                         f"{shape_str(logits_per_text.shape)}")
    target = ops.arange(n)
    return (F.cross_entropy(logits_per_text, target) + F.cross_entropy(logits_per_text.t(), target)) / 2.0


def _normalize(x):
    return x / x.norm(dim=-1, keepdim=True)


class CLIPModel(nn.Module):
    """CLIP: ``out.logits_per_image`` (B_img, B_txt), ``out.logits_per_text``, embeds, ``out.loss``."""

    def __init__(self, config: CLIPConfig):
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config.text_config)
        self.vision_model = CLIPVisionTransformer(config.vision_config)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(ops.tensor(config.logit_scale_init_value))
        self._init_weights()

    def _init_weights(self) -> None:
        """Hugging Face's CLIP init (initializer_factor 1): normal(0.02) embeddings, scaled attention/MLP."""
        tc, vc = self.config.text_config, self.config.vision_config
        for tower, cfg in ((self.text_model, tc), (self.vision_model, vc)):
            d, f = cfg.hidden_size, cfg.initializer_factor
            n = cfg.num_hidden_layers
            for m in tower.modules():
                if isinstance(m, CLIPAttention):
                    in_std = d ** -0.5 * (2 * n) ** -0.5 * f
                    for lin in (m.q_proj, m.k_proj, m.v_proj):
                        nn.init.normal_(lin.weight, std=in_std)
                    nn.init.normal_(m.out_proj.weight, std=d ** -0.5 * f)
                elif isinstance(m, CLIPMLP):
                    nn.init.normal_(m.fc1.weight, std=(2 * d) ** -0.5 * f)
                    nn.init.normal_(m.fc2.weight, std=d ** -0.5 * (2 * n) ** -0.5 * f)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        emb = self.text_model.embeddings
        nn.init.normal_(emb.token_embedding.weight, std=0.02 * tc.initializer_factor)
        nn.init.normal_(emb.position_embedding.weight, std=0.02 * tc.initializer_factor)
        vemb = self.vision_model.embeddings
        nn.init.normal_(vemb.class_embedding, std=vc.hidden_size ** -0.5 * vc.initializer_factor)
        nn.init.normal_(vemb.patch_embedding.weight, std=vc.initializer_range * vc.initializer_factor)
        nn.init.normal_(vemb.position_embedding.weight, std=vc.initializer_range * vc.initializer_factor)
        nn.init.normal_(self.visual_projection.weight, std=vc.hidden_size ** -0.5 * vc.initializer_factor)
        nn.init.normal_(self.text_projection.weight, std=tc.hidden_size ** -0.5 * tc.initializer_factor)

    def get_text_features(self, input_ids, attention_mask=None):
        """Projected (not normalised) text embeddings ``(B, projection_dim)``.

        Differs from transformers 5, whose method returns an output object with the
        projection in ``pooler_output``: here the Tensor itself, as transformers 4 did.
        """
        return self.text_projection(self.text_model(input_ids, attention_mask).pooler_output)

    def get_image_features(self, pixel_values):
        """Projected (not normalised) image embeddings ``(B, projection_dim)``."""
        return self.visual_projection(self.vision_model(pixel_values).pooler_output)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, return_loss: bool = False,
                output_attentions: bool = False):
        if input_ids is None or pixel_values is None:
            raise ConfigError("CLIPModel.forward needs both input_ids and pixel_values; use get_text_features / "
                              "get_image_features for one tower")
        vision = self.vision_model(pixel_values, output_attentions)
        text = self.text_model(input_ids, attention_mask, output_attentions)
        image_embeds = _normalize(self.visual_projection(vision.pooler_output))
        text_embeds = _normalize(self.text_projection(text.pooler_output))
        logits_per_text = (text_embeds @ image_embeds.t()) * self.logit_scale.exp()   # (B_txt, B_img)
        out = ModelOutput(logits_per_image=logits_per_text.t(), logits_per_text=logits_per_text,
                          text_embeds=text_embeds, image_embeds=image_embeds,
                          text_model_output=text, vision_model_output=vision)
        if return_loss:
            out.loss = clip_loss(logits_per_text)
        return out

    @classmethod
    def from_pretrained(cls, directory) -> CLIPModel:
        """Build from ``config.json`` and load ``model.safetensors`` (strict; ``position_ids`` buffers skipped)."""
        model = cls(CLIPConfig.from_dict(hf.read_config(directory)))
        state = {k: v for k, v in hf.load_safetensors_dir(directory).items() if not k.endswith("position_ids")}
        model.load_state_dict(state, strict=True)
        return model.eval()

    def save_pretrained(self, directory) -> None:
        config = self.config.to_dict()
        config["architectures"] = ["CLIPModel"]
        hf.save_pretrained_dir(directory, self.state_dict(), config)


# -- zero-shot classification and retrieval ----------------------------------------------------

def zero_shot_classifier(model: CLIPModel, class_token_ids) -> Tensor:
    """Class embeddings ``(num_classes, P)`` from prompt templates, as in the CLIP paper.

    ``class_token_ids``: one ``(num_templates, T)`` int array (or ``(ids, mask)``
    pair) per class - the class name written into every template and tokenised.
    Each class's embedding is the mean of its normalised prompt embeddings,
    normalised again.
    """
    rows = []
    with no_grad():
        for entry in class_token_ids:
            ids, mask = entry if isinstance(entry, tuple) else (entry, None)
            emb = _normalize(model.get_text_features(ops.tensor(np.asarray(ids)), mask))
            rows.append(_normalize(emb.mean(0)).numpy())
    return ops.tensor(np.stack(rows))


def zero_shot_predict(model: CLIPModel, pixel_values, classifier) -> np.ndarray:
    """Predicted class per image: ``argmax normalize(image_embed) @ classifier^T``."""
    with no_grad():
        img = _normalize(model.get_image_features(pixel_values))
        return (img @ classifier.t()).numpy().argmax(-1)


def retrieval_recall(image_embeds, text_embeds, image_labels=None, text_labels=None, ks=(1, 5, 10)) -> dict:
    """Recall@K for image->text and text->image retrieval by cosine similarity.

    A query is a hit at K when one of its K nearest items is relevant. By
    default item i of each side is relevant to item i of the other (paired
    data); with ``image_labels``/``text_labels`` an item is relevant when the
    labels are equal (class-level retrieval, e.g. Fashion-MNIST captions that
    name only the class).

    Returns ``{"i2t_R@1": ..., "t2i_R@1": ..., ...}`` as fractions in [0, 1].
    """
    img = np.array(image_embeds.detach().numpy() if hasattr(image_embeds, "detach") else image_embeds, np.float64)
    txt = np.array(text_embeds.detach().numpy() if hasattr(text_embeds, "detach") else text_embeds, np.float64)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise ShapeError(f"retrieval_recall: expected (N, P) and (M, P) embeddings, got {shape_str(img.shape)} "
                         f"and {shape_str(txt.shape)}")
    if image_labels is None and text_labels is None:
        if img.shape[0] != txt.shape[0]:
            raise ShapeError(f"retrieval_recall: paired retrieval needs as many images as texts, got "
                             f"{img.shape[0]} and {txt.shape[0]}; pass labels for class-level retrieval")
        image_labels = text_labels = np.arange(img.shape[0])
    il, tl = np.asarray(image_labels), np.asarray(text_labels)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    sim = img @ txt.T                                                   # (N, M)
    out = {}
    for name, s, q_lab, d_lab in (("i2t", sim, il, tl), ("t2i", sim.T, tl, il)):
        kmax = min(max(ks), s.shape[1])
        top = np.argsort(-s, axis=1, kind="stable")[:, :kmax]           # (Q, kmax) nearest first
        rel = d_lab[top] == q_lab[:, None]
        for k in ks:
            out[f"{name}_R@{k}"] = float(rel[:, :k].any(1).mean())
    return out


def logit_scale_clamp_(model: CLIPModel, max_value: float = math.log(100.0)) -> None:
    """Clamp the learnable temperature as the CLIP paper does (scale <= 100); call after each step."""
    model.logit_scale.data[...] = np.minimum(model.logit_scale.data, max_value)
