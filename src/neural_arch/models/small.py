"""The small models a config can name (``model.name``), built from ``nn`` layers (``neural_arch.models.small``).

    mlp               Fashion-MNIST / MNIST: flatten, Linear-ReLU blocks, Linear
    cnn               two (conv 3x3 - ReLU - max-pool 2) blocks, then Linear layers
    char_transformer  a tiny causal transformer over characters (nanoGPT's shape)
    char_mlp          an MLP over a window of character embeddings (Bengio et al. 2003)
    gpt2, modern      neural_arch.models' GPT2LMHeadModel / ModernTransformer over characters
    bert, roberta     neural_arch.models' BertForMaskedLM / RobertaForMaskedLM over characters (masked LM)

``build_model(name, **kwargs)`` makes one; unknown or wrong kwargs raise
``ConfigError`` naming ``model.kwargs``. Language models take ``vocab_size`` and
``block_size`` from the data and map ids (B, T) to logits (B, T, vocab); the masked
ones add two ids past the characters, ``mask_token_id`` and ``pad_token_id``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

import neural_arch.nn.functional as F
from neural_arch import nn
from neural_arch.autograd import Tensor
from neural_arch.errors import ConfigError
from neural_arch.models.bert import BertConfig, BertForMaskedLM, RobertaConfig, RobertaForMaskedLM
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel
from neural_arch.models.modern import ModernConfig, ModernTransformer
from neural_arch.ops import arange, cat, full, tensor


class MLP(nn.Module):
    """(B, 1, 28, 28) images -> (B, num_classes) logits, through ``hidden`` ReLU layers."""

    def __init__(self, in_features: int = 784, hidden: tuple = (100,), num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_features = width
        layers.append(nn.Linear(in_features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """Two conv blocks, (B, 1, 28, 28) -> (B, c1, 14, 14) -> (B, c2, 7, 7), then a classifier."""

    def __init__(self, channels: tuple = (32, 64), hidden: int = 128, num_classes: int = 10,
                 dropout: float = 0.0, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
        )
        side = image_size // 4
        head: list[nn.Module] = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(c2 * side * side, hidden), nn.ReLU()]
            head += [nn.Dropout(dropout)] if dropout else []
            head.append(nn.Linear(hidden, num_classes))
        else:
            head.append(nn.Linear(c2 * side * side, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t."""

    def __init__(self, n_embd: int, n_head: int, dropout: float):
        super().__init__()
        if n_embd % n_head:
            raise ConfigError(f"model.kwargs: n_embd={n_embd} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # re-assemble the heads
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharTransformer(nn.Module):
    """A nanoGPT-shaped character model: (B, T) ids -> (B, T, vocab_size) logits."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 2, n_head: int = 4, n_embd: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        self.block_size = block_size
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(n_embd, n_head, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying, as GPT-2
        self._init_weights(n_layer)

    def _init_weights(self, n_layer: int) -> None:
        # GPT-2's init: N(0, 0.02) everywhere, residual projections scaled down by sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids):
        T = ids.shape[1]
        pos = arange(T)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, T, vocab)


class CharMLP(nn.Module):
    """Predict each next character from the ``context`` previous ones: (B, T) ids -> (B, T, vocab) logits."""

    def __init__(self, vocab_size: int, block_size: int, context: int = 8, n_embd: int = 24, hidden: int = 256,
                 dropout: float = 0.0):
        super().__init__()
        self.block_size, self.context, self.vocab_size = block_size, context, vocab_size
        self.emb = nn.Embedding(vocab_size + 1, n_embd)  # the extra id pads the start of a window
        self.net = nn.Sequential(nn.Linear(context * n_embd, hidden), nn.Tanh(), nn.Dropout(dropout),
                                 nn.Linear(hidden, vocab_size))

    def forward(self, ids):
        B, T = ids.shape
        ids = ids if isinstance(ids, Tensor) else tensor(np.asarray(ids, dtype=np.int64))
        # with ops, not NumPy on ids.data, so that na.compile can replay it
        padded = cat([full((B, self.context - 1), self.vocab_size, dtype=ids.dtype), ids], dim=1)
        windows = padded[:, np.arange(T)[:, None] + np.arange(self.context)]  # (B, T, context)
        x = self.emb(windows)  # (B, T, context, C)
        return self.net(x.reshape(B, T, -1))


class _CausalLM(nn.Module):
    """A causal LM of ``neural_arch.models`` (``.lm``) as the trainer wants it: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, lm, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.lm = lm

    def forward(self, ids):
        return self.lm(ids, use_cache=False).logits


class GPT2(_CausalLM):
    """``models.gpt2.GPT2LMHeadModel`` over characters; nanoGPT's shakespeare_char shape by default."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
                 dropout: float = 0.0, activation_function: str = "gelu_new", tie_word_embeddings: bool = True):
        # activation_function: GPT-2's "gelu_new" (tanh approximation) or "gelu" (exact, as nanoGPT's nn.GELU);
        # tie_word_embeddings: the output head shares the token embedding (GPT-2, nanoGPT) or has its own

        super().__init__(GPT2LMHeadModel(GPT2Config(
            vocab_size=vocab_size, n_positions=block_size, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=None, eos_token_id=None,
            activation_function=activation_function, tie_word_embeddings=tie_word_embeddings)),
            block_size)


class Modern(_CausalLM):
    """``models.modern.ModernTransformer`` (RoPE, SwiGLU, RMSNorm, GQA) over characters."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4, n_kv_head: int = 2,
                 n_embd: int = 128, intermediate_size: int | None = None, dropout: float = 0.0):

        hidden = intermediate_size or int(8 * n_embd / 3 + 7) // 8 * 8  # GPT-2's MLP parameter count
        super().__init__(ModernTransformer(ModernConfig(
            vocab_size=vocab_size, hidden_size=n_embd, intermediate_size=hidden, num_hidden_layers=n_layer,
            num_attention_heads=n_head, num_key_value_heads=n_kv_head, max_position_embeddings=block_size,
            rms_norm_eps=1e-5, attention_dropout=dropout, bos_token_id=None, eos_token_id=None)), block_size)


class _MaskedLM(nn.Module):
    """A masked LM of ``neural_arch.models`` over characters: ids (B, T) -> logits (B, T, vocab_size + 2).

    The character ids are 0 .. vocab_size - 1; two more follow them: ``mask_token_id``
    (what a hidden character is replaced by) and ``pad_token_id`` (never in the text,
    but BERT's word embedding keeps its row at zero and RoBERTa counts positions
    after it, so it must not be a character).
    """

    def __init__(self, lm, vocab_size: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.vocab_size = vocab_size
        self.mask_token_id, self.pad_token_id = vocab_size, vocab_size + 1
        self.lm = lm

    def forward(self, ids):
        return self.lm(ids).logits


def _bert_config(cls, vocab_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float, **extra):
    return cls(vocab_size=vocab_size + 2, hidden_size=n_embd, num_hidden_layers=n_layer, num_attention_heads=n_head,
               intermediate_size=4 * n_embd, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
               type_vocab_size=1, pad_token_id=vocab_size + 1, **extra)


class Bert(_MaskedLM):
    """``models.bert.BertForMaskedLM`` (post-LN, exact GELU, learned positions) over characters."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
                 dropout: float = 0.1):

        config = _bert_config(BertConfig, vocab_size, n_layer, n_head, n_embd, dropout,
                              max_position_embeddings=block_size)
        super().__init__(BertForMaskedLM(config), vocab_size, block_size)


class Roberta(_MaskedLM):
    """``models.bert.RobertaForMaskedLM`` over characters: BERT's network, positions counted from pad + 1."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
                 dropout: float = 0.1):

        # RoBERTa's position ids run pad_token_id + 1 .. pad_token_id + T, so the table holds pad + 1 + T rows
        config = _bert_config(RobertaConfig, vocab_size, n_layer, n_head, n_embd, dropout,
                              max_position_embeddings=vocab_size + 2 + block_size, bos_token_id=None,
                              eos_token_id=None, layer_norm_eps=1e-5)
        super().__init__(RobertaForMaskedLM(config), vocab_size, block_size)


MODELS = {"mlp": MLP, "cnn": CNN, "char_transformer": CharTransformer, "char_mlp": CharMLP, "gpt2": GPT2,
          "modern": Modern, "bert": Bert, "roberta": Roberta}
MASKED_LANGUAGE_MODELS = {"bert", "roberta"}
LANGUAGE_MODELS = {"char_transformer", "char_mlp", "gpt2", "modern"} | MASKED_LANGUAGE_MODELS


def build_model(name: str, **kwargs) -> nn.Module:
    """The model called ``name`` with ``kwargs``; mistakes are ``ConfigError``s naming the argument."""
    if name not in MODELS:
        raise ConfigError(f"model.name: {name!r} is not one of {', '.join(MODELS)}")
    cls = MODELS[name]
    params = inspect.signature(cls.__init__).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        allowed = [p for p in params if p != "self"]
        raise ConfigError(f"model.kwargs: {', '.join(unknown)} not accepted by {name}; it takes {', '.join(allowed)}")
    for key in ("hidden", "channels"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    return cls(**kwargs)
