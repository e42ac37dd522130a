"""``SentenceEncoder``: sentence embeddings from a sentence-transformers model directory.

    enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2/")
    emb = enc.encode(["A man is eating food.", "Someone eats."])   # (2, 384) NumPy, unit rows
    emb @ emb.T                                                     # cosine similarities

What sentence-transformers computes for a Transformer -> Pooling -> Normalize
pipeline, read from the same files:

- ``modules.json``: the pipeline (where the encoder, pooling and normalisation live);
- ``sentence_bert_config.json``: ``max_seq_length`` (inputs are truncated to it) and
  ``do_lower_case``;
- ``1_Pooling/config.json``: how token states become one vector. Mean pooling is
  ``e = sum_t m_t h_t / max(sum_t m_t, 1e-9)`` over the attention mask m;
- ``Normalize``: ``e / max(||e||_2, 1e-12)``.

Without modules.json the directory is a plain Hugging Face encoder and, as
sentence-transformers does then, we mean-pool and do not normalise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neural_arch import nn, ops
from neural_arch.autograd import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.models import hf
from neural_arch.models.bert import BertModel, RobertaConfig, RobertaModel
from neural_arch.models.bert_tokenizer import BertTokenizer
from neural_arch.nn import functional as F

__all__ = ["SentenceEncoder"]

_POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len")
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


# legacy boolean keys of 1_Pooling/config.json -> the mode names of newer files ("pooling_mode": "mean")
_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                  "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens"}


def _pooling_mode(config: dict) -> str:
    """1_Pooling/config.json -> one of _POOLING_MODES."""
    mode = config.get("pooling_mode")
    if mode is None:
        on = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
        mode = _POOLING_FLAGS.get(on[0], on[0]) if len(on) == 1 else on
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    mode = "mean_sqrt_len" if mode == "mean_sqrt_len_tokens" else mode
    if mode not in _POOLING_MODES:
        raise ConfigError(f"SentenceEncoder: pooling {mode!r} (from {config}) is not supported; "
                          f"one of {list(_POOLING_MODES)} is")
    return mode


class SentenceEncoder(nn.Module):
    """A transformer encoder, a pooling of its token states, and optionally L2 normalisation.

    Args:
        model: the encoder (``BertModel`` or ``RobertaModel``).
        tokenizer: its :class:`BertTokenizer`.
        max_seq_length: inputs are truncated to this many tokens (special tokens included).
        pooling: "mean" (default), "cls", "max" or "mean_sqrt_len".
        normalize: divide each embedding by its L2 norm.
        do_lower_case: lower-case texts before tokenizing (sentence-transformers' flag).
    """

    def __init__(self, model: BertModel, tokenizer: BertTokenizer, max_seq_length: int = 256, pooling: str = "mean",
                 normalize: bool = True, do_lower_case: bool = False):
        super().__init__()
        if pooling not in _POOLING_MODES:
            raise ConfigError(f"SentenceEncoder: pooling must be one of {list(_POOLING_MODES)}, got {pooling!r}")
        if not isinstance(max_seq_length, int) or max_seq_length < 2:
            raise ConfigError(f"SentenceEncoder: max_seq_length must be an int >= 2, got {max_seq_length!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.normalize = normalize
        self.do_lower_case = do_lower_case

    @classmethod
    def from_pretrained(cls, directory) -> SentenceEncoder:
        """Load a sentence-transformers directory (or a plain Hugging Face BERT/RoBERTa one); eval mode."""
        root = Path(directory)
        if not root.is_dir():
            raise CheckpointError(f"SentenceEncoder.from_pretrained: {str(root)!r} is not a directory")
        modules = hf.read_json(root / "modules.json", "SentenceEncoder", None)
        if modules is None:  # a bare encoder: Transformer + mean Pooling, as sentence-transformers builds it
            modules = [{"type": _TRANSFORMER, "path": ""}, {"type": _POOLING, "path": None}]
        kinds = [m.get("type") for m in modules]
        unsupported = [k for k in kinds if k not in (_TRANSFORMER, _POOLING, _NORMALIZE)]
        if unsupported or kinds.count(_TRANSFORMER) != 1:
            raise ConfigError(f"SentenceEncoder: modules.json lists {kinds}; only one Transformer followed by "
                              "Pooling and Normalize is supported")

        encoder_dir = root / next(m for m in modules if m["type"] == _TRANSFORMER)["path"]
        st_config = hf.read_json(encoder_dir / "sentence_bert_config.json", "SentenceEncoder", {})
        config = hf.read_config(encoder_dir)
        model_cls = RobertaModel if config.get("model_type") in RobertaConfig.accepted_model_types else BertModel
        model = model_cls.from_pretrained(encoder_dir)

        pooling = "mean"
        pooling_entry = next((m for m in modules if m["type"] == _POOLING), None)
        if pooling_entry is not None and pooling_entry.get("path"):
            pooling = _pooling_mode(hf.read_json(root / pooling_entry["path"] / "config.json", "SentenceEncoder", {}))

        # sentence-transformers truncates at max_seq_length, never beyond the position table
        max_positions = model.config.max_position_embeddings
        if isinstance(model, RobertaModel):
            max_positions -= model.config.pad_token_id + 1   # positions start at pad + 1
        max_seq_length = min(st_config.get("max_seq_length") or max_positions, max_positions)
        tokenizer = BertTokenizer.from_pretrained(encoder_dir, model_max_length=max_seq_length)
        return cls(model, tokenizer, max_seq_length=max_seq_length, pooling=pooling,
                   normalize=_NORMALIZE in kinds, do_lower_case=bool(st_config.get("do_lower_case", False))).eval()

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> Tensor:
        """Token ids (B, T) and mask (B, T) -> embeddings (B, D), differentiable (for fine-tuning)."""
        # the pooling reads the tokens' states only: the blocks need not compute the padding's
        h = self.model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       skip_padding=True).last_hidden_state
        w = self.model.embeddings.word_embeddings.weight
        mask = attention_mask.data if isinstance(attention_mask, Tensor) else np.asarray(attention_mask)
        m = ops.tensor(mask, dtype=h.dtype, device=w.device).unsqueeze(-1)                 # (B, T, 1)
        if self.pooling == "cls":
            e = h[:, 0]                                                  # (B, D)
        elif self.pooling == "max":
            e = h.masked_fill(m == 0, -1e9).amax(dim=1)                 # padding never wins (as sentence-transformers)
        else:
            total = (h * m).sum(1)                                      # (B, D) sum over real tokens
            count = m.sum(1).clamp(min=1e-9)                            # (B, 1)
            e = total / count if self.pooling == "mean" else total / count.sqrt()
        return F.normalize(e, p=2.0, dim=1) if self.normalize else e

    def encode(self, sentences, batch_size: int = 32) -> np.ndarray:
        """Embed strings: a list -> (N, D) float32 array, one string -> (D,). Runs without autograd, in
        batches of similar length (the order of the output is the order of the input)."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        dim = self.model.config.hidden_size
        out = np.zeros((len(texts), dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")   # similar lengths share a batch: less padding
        with no_grad():
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in idx], max_length=self.max_seq_length)
                e = self(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                out[idx] = e.numpy()
        return out[0] if single else out

    def extra_repr(self) -> str:
        return (f"max_seq_length={self.max_seq_length}, pooling={self.pooling!r}, normalize={self.normalize}, "
                f"do_lower_case={self.do_lower_case}")
