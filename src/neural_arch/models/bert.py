"""BERT and RoBERTa: bidirectional transformer encoders that load Hugging Face checkpoints.

    model = BertModel.from_pretrained("bert-dir/")      # config.json + model.safetensors
    out = model(input_ids, attention_mask=mask)         # (B, T) int ids, (B, T) 0/1
    out.last_hidden_state                               # (B, T, H)
    out.pooler_output                                   # (B, H): tanh(W h_[CLS] + b)

The module tree mirrors ``transformers``' exactly (``encoder.layer.0.attention.
self.query``...), so a checkpoint loads by name with no renaming table. One
block, post-LN as in the paper (Devlin et al. 2018):

    a = LayerNorm(x + Dropout(SelfAttention(x)))
    y = LayerNorm(a + Dropout(W2 gelu(W1 a)))

RoBERTa (Liu et al. 2019) is the same network; only its position ids differ
(they start at ``pad_token_id + 1`` and skip padding) and its heads.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np

from neural_arch import nn, ops
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import to_numpy
from neural_arch.errors import CheckpointError, ConfigError, DTypeError, IndexingError, ShapeError, shape_str
from neural_arch.models import hf
from neural_arch.models._checkpointing import GradientCheckpointingMixin, checkpoint, checkpointing
from neural_arch.models._tokens import Tokens
from neural_arch.nn import functional as F

__all__ = [
    "BertConfig", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
    "RobertaConfig", "RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification",
    "BaseModelOutputWithPooling", "MaskedLMOutput", "SequenceClassifierOutput",
]


# ----------------------------------------------------------------------------------------------
# Config: the fields of a Hugging Face config.json, with transformers' defaults (bert-base)
# ----------------------------------------------------------------------------------------------

@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"                  # exact erf GELU, as the original BERT
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    position_embedding_type: str = "absolute"
    classifier_dropout: float | None = None   # None: use hidden_dropout_prob
    num_labels: int = 2                       # config.json stores it as id2label
    problem_type: str | None = None           # regression / single_label_classification / multi_label_classification
    tie_word_embeddings: bool = True          # MLM decoder shares the word-embedding matrix
    extra: dict = field(default_factory=dict, repr=False)  # other config.json fields, written back as read

    model_type: ClassVar[str] = "bert"
    accepted_model_types: ClassVar[tuple] = ("bert",)

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "num_labels"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"{type(self).__name__}: hidden_size {self.hidden_size} is not a multiple of "
                              f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in hf.ACT2FN:
            raise ConfigError(f"{type(self).__name__}: hidden_act {self.hidden_act!r} is not supported; "
                              f"use one of {sorted(hf.ACT2FN)}")
        if self.position_embedding_type != "absolute":
            raise ConfigError(f"{type(self).__name__}: position_embedding_type {self.position_embedding_type!r} "
                              "is not supported; only 'absolute' (learned positions) is implemented")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"{type(self).__name__}: pad_token_id {self.pad_token_id} is outside the vocabulary "
                              f"(vocab_size {self.vocab_size})")

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        """A config from the dict of a config.json; unknown fields are kept in ``extra``."""
        d = dict(d)
        model_type = d.pop("model_type", None)
        if model_type is not None and model_type not in cls.accepted_model_types:
            raise ConfigError(f"{cls.__name__}: config.json has model_type {model_type!r}, expected one of "
                              f"{list(cls.accepted_model_types)}; load it with the matching model class")
        if "id2label" in d and "num_labels" not in d:
            d["num_labels"] = len(d["id2label"])
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["extra"] = {k: v for k, v in d.items() if k not in known and k != "architectures"}
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """The config.json dict, in transformers' spelling (labels as id2label / label2id)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d.update(self.extra)
        n = d.pop("num_labels")
        if len(d.get("id2label", {})) != n:
            d["id2label"] = {str(i): f"LABEL_{i}" for i in range(n)}
            d["label2id"] = {f"LABEL_{i}": i for i in range(n)}
        d["model_type"] = self.model_type
        return d


@dataclass
class RobertaConfig(BertConfig):
    vocab_size: int = 50265
    pad_token_id: int = 1      # <pad>; positions start at pad_token_id + 1
    bos_token_id: int | None = 0
    eos_token_id: int | None = 2

    model_type: ClassVar[str] = "roberta"
    accepted_model_types: ClassVar[tuple] = ("roberta", "xlm-roberta", "camembert")


# ----------------------------------------------------------------------------------------------
# Outputs: the attribute names transformers returns
# ----------------------------------------------------------------------------------------------

@dataclass
class BaseModelOutputWithPooling:
    last_hidden_state: Tensor              # (B, T, H)
    pooler_output: Tensor | None = None    # (B, H), None when built with add_pooling_layer=False


@dataclass
class MaskedLMOutput:
    logits: Tensor                         # (B, T, V)
    loss: Tensor | None = None             # mean cross entropy over labels != -100


@dataclass
class SequenceClassifierOutput:
    logits: Tensor                         # (B, num_labels)
    loss: Tensor | None = None


# ----------------------------------------------------------------------------------------------
# The network, in the order data flows through it
# ----------------------------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    """word + token type + position embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig, position_padding_idx: int | None = None):
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, H, padding_idx=position_padding_idx)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor, position_ids: Tensor) -> Tensor:
        # (B, T) ids each -> (B, T, H); summed in transformers' order so float32 rounds alike
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, mask: Tensor | None, tokens: Tokens | None = None) -> Tensor:
        # x (B, T, H), or (N, H) the tokens' states alone (``tokens``: where they sit in (B, T))
        if tokens is None:
            B, T, H = x.shape
            q, k, v = self.query(x), self.key(x), self.value(x)
        else:
            B, T, H = tokens.batch, tokens.length, x.shape[-1]
            q, k, v = tokens.pad(self.query(x)), tokens.pad(self.key(x)), tokens.pad(self.value(x))
        nh = self.num_attention_heads
        q = q.view(B, T, nh, H // nh).transpose(1, 2)   # (B, nh, T, hs)
        k = k.view(B, T, nh, H // nh).transpose(1, 2)   # (B, nh, T, hs)
        v = v.view(B, T, nh, H // nh).transpose(1, 2)   # (B, nh, T, hs)
        # softmax(q k^T / sqrt(hs) + mask) v; mask (B, 1, 1, T) is 0 for tokens, a huge negative for padding
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout_p if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, H)          # (B, T, H)
        return y if tokens is None else tokens.unpad(y)


class BertSelfOutput(nn.Module):
    """Output projection of the attention, dropout, residual, post-LN."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)   # transformers' name: "attention.self.query"
        self.output = BertSelfOutput(config)

    def forward(self, x: Tensor, mask: Tensor | None, tokens: Tokens | None = None) -> Tensor:
        return self.output(self.self(x, mask, tokens), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = hf.ACT2FN[config.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))   # (B, T, 4H)


class BertOutput(BertSelfOutput):
    """Down projection of the MLP, dropout, residual, post-LN."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: Tensor, mask: Tensor | None, tokens: Tokens | None = None) -> Tensor:
        a = self.attention(x, mask, tokens)           # LayerNorm(x + attn(x))
        return self.output(self.intermediate(a), a)   # LayerNorm(a + mlp(a)), row by row


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing, self.checkpoint_kwargs = False, {}  # gradient_checkpointing_enable()

    def forward(self, x: Tensor, mask: Tensor | None, tokens: Tokens | None = None) -> Tensor:
        recompute = checkpointing(self)
        for block in self.layer:
            x = checkpoint(block, x, mask, tokens, **self.checkpoint_kwargs) if recompute else block(x, mask, tokens)
        return x


class BertPooler(nn.Module):
    """tanh(W h_0 + b): the hidden state of the first token ([CLS] / <s>) through a dense layer."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: Tensor) -> Tensor:
        return self.dense(h[:, 0]).tanh()   # (B, T, H) -> (B, H)


# ----------------------------------------------------------------------------------------------
# Loading and saving the Hugging Face layout
# ----------------------------------------------------------------------------------------------

# Checkpoint names that are not weights of ours: transformers' cached position / token type ids, and the
# MLM decoder bias, which transformers ties to "cls.predictions.bias" / "lm_head.bias" (loaded under those).
_SKIPPED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids", "predictions.decoder.bias",
                     "lm_head.decoder.bias")


class BertPreTrainedModel(GradientCheckpointingMixin, nn.Module):
    """What every model here shares: weight init, ``from_pretrained`` and ``save_pretrained``.

    A head model (``BertForMaskedLM``) keeps its encoder under ``base_model_prefix``
    ("bert."); a bare encoder has no prefix. As in transformers, either kind of
    checkpoint loads into either kind of model: the prefix is added or removed,
    weights a head needs but the file lacks are freshly initialised (with a warning),
    and weights the model has no place for are skipped (with a warning). A missing
    *encoder* weight is an error: that model would be silently wrong.
    """

    config_class: ClassVar[type] = BertConfig
    base_model_prefix: ClassVar[str] = "bert"
    # our state_dict name -> the name it is tied to (not written, as transformers does)
    _tied_weights: ClassVar[dict] = {}

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                              f"got {type(config).__name__}")
        self.config = config

    # -- initialisation, as transformers' _init_weights --------------------------------------------
    def init_weights(self, module: nn.Module | None = None) -> None:
        """Initialise ``module`` (default: the whole model): Linear and Embedding weights ~ N(0, initializer_range),
        biases 0 (the padding row of an embedding too), LayerNorm (1, 0); then re-tie shared weights."""
        std = self.config.initializer_range
        for m in (self if module is None else module).modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=std)
                if m.padding_idx is not None:
                    m.weight.data[m.padding_idx] = 0
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (BertLMPredictionHead, RobertaLMHead)):
                nn.init.zeros_(m.bias)
        self._tie_weights()

    def _tie_weights(self) -> None:
        """Point each tied weight at the Parameter it shares (the MLM decoder -> word embeddings)."""

    def _is_tied(self, name: str) -> bool:
        return self.config.tie_word_embeddings and name in self._tied_weights

    # -- reading -----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, **config_overrides):
        """Build the model from ``directory/config.json`` and load ``model.safetensors``; returns it in eval mode.

        ``config_overrides`` replace config fields (e.g. ``num_labels=3`` for a new head).
        """
        config_dict = hf.read_config(directory)
        config_dict.update(config_overrides)
        model = cls(cls.config_class.from_dict(config_dict))
        model.load_hf_state_dict(hf.load_safetensors_dir(directory), source=str(directory))
        return model.eval()

    def load_hf_state_dict(self, arrays: dict, source: str = "state_dict") -> None:
        """Load tensors named as in a transformers checkpoint (with or without the base prefix)."""
        own = self.state_dict()
        prefix = self.base_model_prefix + "."
        is_head_model = any(k.startswith(prefix) for k in own)
        file_has_prefix = any(k.startswith(prefix) for k in arrays)
        state = {}
        for name, arr in arrays.items():
            name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
            if is_head_model and not file_has_prefix:
                name = prefix + name              # a bare encoder checkpoint into a head model
            elif not is_head_model and name.startswith(prefix):
                name = name[len(prefix):]         # a head checkpoint into a bare encoder
            if name.endswith(_SKIPPED_SUFFIXES) or self._is_tied(name):
                continue
            state[name] = arr
        missing = [k for k in own if k not in state and not self._is_tied(k)]
        unexpected = [k for k in state if k not in own]
        # embeddings and blocks must come from the file; a pooler or head may be new (to be trained)
        encoder_missing = [k for k in missing if k.removeprefix(prefix).startswith(("embeddings.", "encoder."))]
        if encoder_missing:
            raise CheckpointError(f"{type(self).__name__}.from_pretrained: {source} lacks {len(encoder_missing)} "
                                  f"encoder weight(s), e.g. {encoder_missing[:3]}; is it a "
                                  f"{self.config_class.model_type} checkpoint of this size?")
        if missing:
            warnings.warn(f"{type(self).__name__}: {missing} not in {source}; freshly initialised (train them)",
                          stacklevel=3)
        if unexpected:
            warnings.warn(f"{type(self).__name__}: {source} holds weights this model does not use, skipped: "
                          f"{unexpected}", stacklevel=3)
        self.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)

    # -- writing -----------------------------------------------------------------------------------
    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` and ``model.safetensors`` as transformers does (tied copies left out)."""
        state = {k: v for k, v in self.state_dict().items() if not self._is_tied(k)}
        config = self.config.to_dict()
        config["architectures"] = [type(self).__name__]
        config["dtype"] = str(np.dtype(self.embeddings_module().word_embeddings.weight.dtype))
        hf.save_pretrained_dir(directory, state, config)

    def embeddings_module(self) -> BertEmbeddings:
        base = getattr(self, self.base_model_prefix, self)
        return base.embeddings


# ----------------------------------------------------------------------------------------------
# Encoders
# ----------------------------------------------------------------------------------------------

class BertModel(BertPreTrainedModel):
    """The BERT encoder: embeddings, ``num_hidden_layers`` post-LN blocks, and the [CLS] pooler."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config, position_padding_idx=self._position_padding_idx())
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()   # a head model then initialises only its head

    def _position_padding_idx(self) -> int | None:
        return None

    def position_ids_from(self, ids: np.ndarray) -> np.ndarray:
        """(B, T) ids -> (1, T) positions 0..T-1 (BERT ignores padding: the mask handles it)."""
        return np.arange(ids.shape[1])[None, :]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                position_ids=None, skip_padding: bool = False) -> BaseModelOutputWithPooling:
        """``input_ids`` (B, T) ints; ``attention_mask`` (B, T) 1 for tokens, 0 for padding;
        ``token_type_ids`` (B, T) segment ids (default 0); ``position_ids`` (B, T) (default per model).

        ``skip_padding``: run the blocks on the tokens alone, not on the padding (``models/_tokens.py``):
        less work for a batch of mixed lengths, the same states for the tokens, but the padding positions
        of ``last_hidden_state`` then hold a copy of their row's first token's state, not what
        transformers computes there (for poolings that read only tokens: sentence embeddings)."""
        name = type(self).__name__
        config = self.config
        weight = self.embeddings.word_embeddings.weight
        ids = _int_array(input_ids, "input_ids", name)
        B, T = ids.shape
        _check_range(ids, config.vocab_size, "input_ids", "vocab_size", name)
        types = np.zeros_like(ids) if token_type_ids is None else \
            _int_array(token_type_ids, "token_type_ids", name, ids.shape)
        _check_range(types, config.type_vocab_size, "token_type_ids", "type_vocab_size", name)
        pos = self.position_ids_from(ids) if position_ids is None else _int_array(position_ids, "position_ids", name)
        if pos.size and pos.max() >= config.max_position_embeddings:
            raise ShapeError(f"{name}: a sequence of {T} tokens needs position {int(pos.max())}, but "
                             f"max_position_embeddings is {config.max_position_embeddings}; truncate the input")
        _check_range(pos, config.max_position_embeddings, "position_ids", "max_position_embeddings", name)

        mask = tokens = None
        if attention_mask is not None:
            m = _as_array(attention_mask)
            if tuple(m.shape) != (B, T):
                raise ShapeError(f"{name}: attention_mask has shape {shape_str(m.shape)}, expected (B, T) = "
                                 f"{shape_str((B, T))} like input_ids")
            # the extended additive mask, as transformers: (B, 1, 1, T), 0 to attend, dtype-min to ignore
            additive = (1.0 - m.astype(weight.dtype))[:, None, None, :] * np.finfo(weight.dtype).min
            mask = ops.tensor(additive, dtype=weight.dtype, device=weight.device)
            tokens = Tokens.of(m) if skip_padding and not weight.is_cuda else None  # (index arrays on the host)

        device = weight.device
        if tokens is None:
            x = self.embeddings(ops.tensor(ids, device=device), ops.tensor(types, device=device),
                                ops.tensor(pos, device=device))        # (B, T, H)
            h = self.encoder(x, mask)                                   # (B, T, H)
        else:  # the N tokens' states (N, H) through the blocks, then back in the (B, T, H) layout
            x = self.embeddings(ops.tensor(tokens.take(ids), device=device),
                                ops.tensor(tokens.take(types), device=device),
                                ops.tensor(tokens.take(pos), device=device))
            h = tokens.pad(self.encoder(x, mask, tokens))
        pooled = self.pooler(h) if self.pooler is not None else None    # (B, H)
        return BaseModelOutputWithPooling(last_hidden_state=h, pooler_output=pooled)


class RobertaModel(BertModel):
    """RoBERTa: BERT's encoder with positions counted from ``pad_token_id + 1``, padding skipped."""

    config_class = RobertaConfig
    base_model_prefix = "roberta"

    def _position_padding_idx(self) -> int | None:
        return self.config.pad_token_id

    def position_ids_from(self, ids: np.ndarray) -> np.ndarray:
        """fairseq's make_positions: token i of a row gets pad + (number of non-pad tokens up to i);
        every pad token gets pad. ``[<s>, a, b, <pad>] -> [p+1, p+2, p+3, p]`` with p = pad_token_id."""
        pad = self.config.pad_token_id
        not_pad = (ids != pad).astype(np.int64)
        return np.cumsum(not_pad, axis=1) * not_pad + pad


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------

class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = hf.ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: Tensor) -> Tensor:
        return self.LayerNorm(self.act(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    """transform, then scores over the vocabulary: decoder (tied to the word embeddings) + bias."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(ops.zeros(config.vocab_size))

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.transform(h)) + self.bias   # (B, T, V)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, h: Tensor) -> Tensor:
        return self.predictions(h)


class BertForMaskedLM(BertPreTrainedModel):
    """BERT + the masked-language-model head; ``labels`` (B, T) with -100 where no loss is taken."""

    _tied_weights = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.init_weights(self.cls)

    def _tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None):
        h = self.bert(input_ids, attention_mask, token_type_ids, position_ids).last_hidden_state
        logits = self.cls(h)                                             # (B, T, V)
        return MaskedLMOutput(logits=logits, loss=_mlm_loss(logits, labels, type(self).__name__))


class BertForSequenceClassification(BertPreTrainedModel):
    """BERT + dropout + a linear classifier on the pooled [CLS] state."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None):
        pooled = self.bert(input_ids, attention_mask, token_type_ids, position_ids).pooler_output   # (B, H)
        logits = self.classifier(self.dropout(pooled))                                           # (B, C)
        return SequenceClassifierOutput(logits=logits, loss=_classification_loss(logits, labels, self.config))


class RobertaLMHead(nn.Module):
    """dense -> gelu -> layer_norm -> decoder (tied to the word embeddings) + bias."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(ops.zeros(config.vocab_size))

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(h)))) + self.bias   # (B, T, V)


class RobertaForMaskedLM(BertPreTrainedModel):
    """RoBERTa with the masked-LM head (transformers' ``RobertaForMaskedLM`` layout); decoder tied to the embeddings."""
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    _tied_weights = {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight"}

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.init_weights(self.lm_head)

    def _tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.decoder.weight = self.roberta.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None):
        h = self.roberta(input_ids, attention_mask, token_type_ids, position_ids).last_hidden_state
        logits = self.lm_head(h)
        return MaskedLMOutput(logits=logits, loss=_mlm_loss(logits, labels, type(self).__name__))


class RobertaClassificationHead(nn.Module):
    """RoBERTa has no pooler: dropout -> dense -> tanh -> dropout -> out_proj on the <s> state."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(p)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, h: Tensor) -> Tensor:
        x = self.dropout(h[:, 0])                       # (B, H), the <s> token
        x = self.dropout(self.dense(x).tanh())
        return self.out_proj(x)                         # (B, C)


class RobertaForSequenceClassification(BertPreTrainedModel):
    """RoBERTa with a classification head on the first token (transformers' ``RobertaForSequenceClassification``)."""
    config_class = RobertaConfig
    base_model_prefix = "roberta"

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config)
        self.init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None):
        h = self.roberta(input_ids, attention_mask, token_type_ids, position_ids).last_hidden_state
        logits = self.classifier(h)
        return SequenceClassifierOutput(logits=logits, loss=_classification_loss(logits, labels, self.config))


# ----------------------------------------------------------------------------------------------
# Helpers: inputs and losses
# ----------------------------------------------------------------------------------------------

def _as_array(x) -> np.ndarray:
    return to_numpy(x.data if isinstance(x, Tensor) else x)


def _int_array(x, what: str, op: str, shape: tuple | None = None) -> np.ndarray:
    arr = _as_array(x)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{op}: {what} must hold integers, got dtype {arr.dtype}; token ids come from a tokenizer")
    if arr.ndim != 2:
        raise ShapeError(f"{op}: {what} must be 2-D (B, T), got shape {shape_str(arr.shape)}; "
                         "for one sequence use ids[None]")
    if shape is not None and arr.shape != shape:
        raise ShapeError(f"{op}: {what} has shape {shape_str(arr.shape)}, expected {shape_str(shape)} like input_ids")
    return arr.astype(np.int64, copy=False)


def _check_range(arr: np.ndarray, n: int, what: str, field_name: str, op: str) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = int(arr.max()) if arr.max() >= n else int(arr.min())
        raise IndexingError(f"{op}: {what} holds {bad}, outside [0, {n}) ({field_name}); "
                            "was the input made by this model's tokenizer?")


def _mlm_loss(logits: Tensor, labels, op: str) -> Tensor | None:
    if labels is None:
        return None
    y = _int_array(labels, "labels", op, tuple(logits.shape[:2]))
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), ops.tensor(y.reshape(-1), device=logits.device), ignore_index=-100)


def _classification_loss(logits: Tensor, labels, config: BertConfig) -> Tensor | None:
    """transformers' rule: one label -> MSE regression; integer labels -> cross entropy; else multi-label BCE."""
    if labels is None:
        return None
    y = _as_array(labels)
    problem = config.problem_type
    if problem is None:
        if config.num_labels == 1:
            problem = "regression"
        elif y.dtype.kind in "iu":
            problem = "single_label_classification"
        else:
            problem = "multi_label_classification"
    if problem == "regression":
        target = ops.tensor(y.astype(logits.dtype).reshape(-1), device=logits.device)
        return F.mse_loss(logits.reshape(-1) if config.num_labels == 1 else logits,
                          target if config.num_labels == 1 else target.reshape(logits.shape))
    if problem == "single_label_classification":
        return F.cross_entropy(logits.reshape(-1, config.num_labels), ops.tensor(y.reshape(-1).astype(np.int64),
                                                                                   device=logits.device))
    if problem == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, ops.tensor(y.astype(logits.dtype), device=logits.device))
    raise ConfigError(f"problem_type {problem!r} is not one of regression, single_label_classification, "
                      "multi_label_classification")
