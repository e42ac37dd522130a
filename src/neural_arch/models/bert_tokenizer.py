"""``BertTokenizer``: text -> padded (B, T) token ids, masks and segment ids for an encoder model directory.

A thin wrapper over the Rust ``tokenizers`` library (the ``text`` extra), which
does the real work (normalisation, WordPiece / BPE, [CLS] ... [SEP] templates)
exactly as ``transformers``' fast tokenizers do, because they *are* it:

    tok = BertTokenizer.from_pretrained("bert-dir/")      # reads tokenizer.json (or vocab.txt)
    batch = tok(["a sentence", "another one"], max_length=128)
    batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]   # (B, T) int64 arrays

Any tokenizer.json works (a RoBERTa directory's too: its template adds <s> ... </s>);
vocab.txt is BERT's WordPiece fallback. (GPT-2's byte-level BPE for generation is
``models/tokenizers.py``'s BPETokenizer; this one makes padded encoder batches.)

NOTE: a tokenizer.json may carry its own padding/truncation settings (e.g. pad
everything to 128); like transformers we ignore them and pad/truncate per call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neural_arch.errors import CheckpointError, ConfigError, DataError
from neural_arch.models.hf import read_json

__all__ = ["BertTokenizer"]


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json stores it: a string or {"content": ...}."""
    return value.get("content") if isinstance(value, dict) else value


class BertTokenizer:
    """Batched encoding with padding and truncation; see the module docstring.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        model_max_length: the default ``max_length`` for truncation.
        pad_token: the padding token's text (its id is looked up in the vocabulary).
    """

    def __init__(self, tokenizer, model_max_length: int = 512, pad_token: str = "[PAD]"):
        self._tok = tokenizer
        self._tok.no_padding()       # padding and truncation are chosen per call, never inherited
        self._tok.no_truncation()
        self.model_max_length = int(model_max_length)
        self.pad_token = pad_token
        self.pad_token_id = tokenizer.token_to_id(pad_token)
        if self.pad_token_id is None:
            raise ConfigError(f"BertTokenizer: the pad token {pad_token!r} is not in the vocabulary")

    @classmethod
    def from_pretrained(cls, directory, model_max_length: int | None = None) -> BertTokenizer:
        """Read ``tokenizer.json``, else ``vocab.txt`` (BERT WordPiece, lower-cased unless
        tokenizer_config.json says ``do_lower_case: false``). ``model_max_length`` defaults to
        tokenizer_config.json's, capped by config.json's ``max_position_embeddings``."""
        try:
            from tokenizers import Tokenizer as _RustTokenizer  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError("BertTokenizer needs the `tokenizers` package: pip install 'neural-arch[text]'") from exc
        path = Path(directory)
        if not path.is_dir():
            raise CheckpointError(f"BertTokenizer.from_pretrained: {str(path)!r} is not a directory")
        tok_config = read_json(path / "tokenizer_config.json", "BertTokenizer", {})
        if (path / "tokenizer.json").is_file():
            tok = _RustTokenizer.from_file(str(path / "tokenizer.json"))
        elif (path / "vocab.txt").is_file():
            from tokenizers.implementations import BertWordPieceTokenizer  # noqa: PLC0415

            lowercase = bool(tok_config.get("do_lower_case", True))
            tok = BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=lowercase,
                                         strip_accents=tok_config.get("strip_accents"))._tokenizer
        else:
            raise CheckpointError(f"BertTokenizer.from_pretrained: no tokenizer.json or vocab.txt in {str(path)!r}")

        if model_max_length is None:
            model_max_length = tok_config.get("model_max_length", 512)
            if not isinstance(model_max_length, int) or model_max_length > 10**6:  # transformers' "no limit" sentinel
                model_max_length = 512
            max_positions = read_json(path / "config.json", "BertTokenizer", {}).get("max_position_embeddings")
            if isinstance(max_positions, int):
                model_max_length = min(model_max_length, max_positions)
        pad = _token_text(tok_config.get("pad_token")) or _token_text(
            read_json(path / "special_tokens_map.json", "BertTokenizer", {}).get("pad_token"))
        if pad is None:
            pad = "[PAD]" if tok.token_to_id("[PAD]") is not None else "<pad>"
        return cls(tok, model_max_length=model_max_length, pad_token=pad)

    def __call__(self, text, text_pair=None, padding=True, truncation=True, max_length: int | None = None) -> dict:
        """Encode a string or a list of strings (optionally with second segments ``text_pair``).

        ``padding``: True / "longest" (to the longest in the batch), "max_length", or False
        (then all sequences must come out the same length). ``truncation``: cut to ``max_length``
        (default ``model_max_length``), longest segment first for pairs, as transformers.
        Returns int64 arrays ``input_ids``, ``token_type_ids``, ``attention_mask`` of shape (B, T).
        """
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise DataError(f"BertTokenizer: expected strings, got {sorted({type(t).__name__ for t in texts})}")
        pairs = None
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(texts):
                raise DataError(f"BertTokenizer: {len(texts)} texts but {len(pairs)} text_pair entries")
        if padding not in (True, False, "longest", "max_length"):
            raise ConfigError(f"BertTokenizer: padding must be True, False, 'longest' or 'max_length', got {padding!r}")
        max_length = self.model_max_length if max_length is None else int(max_length)
        if max_length < 1:
            raise ConfigError(f"BertTokenizer: max_length must be positive, got {max_length}")

        if truncation:
            self._tok.enable_truncation(max_length, strategy="longest_first")
        else:
            self._tok.no_truncation()
        if padding:
            self._tok.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token,
                                     length=max_length if padding == "max_length" else None)
        else:
            self._tok.no_padding()
        try:
            encodings = self._tok.encode_batch(list(zip(texts, pairs)) if pairs is not None else texts)
        finally:
            self._tok.no_padding()
            self._tok.no_truncation()
        lengths = {len(e.ids) for e in encodings}
        if len(lengths) > 1:
            raise DataError(f"BertTokenizer: sequences have lengths {sorted(lengths)}; pass padding=True to batch them")
        T = lengths.pop() if lengths else 0
        as_array = lambda rows: np.asarray(rows, dtype=np.int64).reshape(len(encodings), T)  # noqa: E731
        return {
            "input_ids": as_array([e.ids for e in encodings]),
            "token_type_ids": as_array([e.type_ids for e in encodings]),
            "attention_mask": as_array([e.attention_mask for e in encodings]),
        }

    def tokenize(self, text: str) -> list[str]:
        """The token strings of one text, special tokens included."""
        return self._tok.encode(text).tokens

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._tok.decode([int(i) for i in np.asarray(ids).reshape(-1)], skip_special_tokens=skip_special_tokens)

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._tok.token_to_id(tokens)
        return [self._tok.token_to_id(t) for t in tokens]

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def __len__(self) -> int:
        return self._tok.get_vocab_size()

    def __repr__(self) -> str:
        return (f"BertTokenizer(vocab_size={self.vocab_size}, model_max_length={self.model_max_length}, "
                f"pad={self.pad_token!r})")
