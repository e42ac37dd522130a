"""Byte-level BPE, GPT-2's tokenizer, trained and run by the Hugging Face ``tokenizers`` library.

    tok = BPETokenizer.train(text, vocab_size=1024)     # learn merges from a corpus
    ids = tok.encode("To be, or not to be")             # int64 array
    tok.decode(ids)                                      # the same text back
    tok.save("out/")                                     # out/tokenizer.json, as on the Hub
    BPETokenizer.from_pretrained("gpt2/")               # GPT-2's own tokenizer.json

Byte-level: the text is first mapped to its UTF-8 bytes (each shown as a
printable character), so every string encodes without an unknown token, and
merges of frequent byte pairs are learned on top (Sennrich et al. 2016;
Radford et al. 2019). The ``tokenizers`` package (the ``text`` extra) is
imported only when a tokenizer is made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neural_arch.data import CharTokenizer
from neural_arch.errors import CheckpointError, ConfigError, DataError

__all__ = ["BPETokenizer", "load_tokenizer", "save_char_tokenizer"]

END_OF_TEXT = "<|endoftext|>"


def _tokenizers():
    try:
        import tokenizers  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("BPETokenizer needs the `tokenizers` package: pip install 'neural-arch[text]'") from exc
    return tokenizers


class BPETokenizer:
    """A byte-level BPE tokenizer (GPT-2's scheme) wrapping ``tokenizers.Tokenizer``."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, text, vocab_size: int = 1024, min_frequency: int = 2,
              special_tokens=(END_OF_TEXT,)) -> BPETokenizer:
        """Learn merges from ``text`` (a string or a list of strings) up to ``vocab_size`` tokens
        (the 256 byte symbols and ``special_tokens`` included)."""
        tk = _tokenizers()
        if vocab_size < 256 + len(special_tokens):
            raise ConfigError(f"BPETokenizer.train: vocab_size must be >= 256 + {len(special_tokens)} special "
                              f"tokens (one per byte), got {vocab_size}")
        texts = [text] if isinstance(text, str) else list(text)
        if not any(texts):
            raise DataError("BPETokenizer.train: no text to learn from")
        tokenizer = tk.Tokenizer(tk.models.BPE())
        tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                         special_tokens=list(special_tokens),
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
                                         show_progress=False)
        # one "sentence" per line keeps the trainer's memory small; newlines stay in the text
        tokenizer.train_from_iterator((line for t in texts for line in t.splitlines(keepends=True)), trainer)
        return cls(tokenizer)

    @classmethod
    def from_pretrained(cls, directory) -> BPETokenizer:
        """Read ``directory/tokenizer.json`` (ours, or a Hugging Face model's, e.g. GPT-2's)."""
        path = Path(directory) / "tokenizer.json"
        if not path.is_file():
            raise CheckpointError(f"BPETokenizer.from_pretrained: no tokenizer.json in {str(directory)!r}")
        return cls(_tokenizers().Tokenizer.from_file(str(path)))

    def save(self, directory) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path / "tokenizer.json"))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.token_to_id(END_OF_TEXT)

    def encode(self, text: str) -> np.ndarray:
        """The token ids of ``text`` as an int64 array."""
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)

    def encode_batch(self, texts) -> list:
        return [np.asarray(e.ids, dtype=np.int64) for e in self.tokenizer.encode_batch(list(texts))]

    def decode(self, ids) -> str:
        ids = getattr(ids, "data", ids)
        return self.tokenizer.decode([int(i) for i in np.asarray(ids).reshape(-1)], skip_special_tokens=False)


CHAR_TOKENIZER_NAME = "char_tokenizer.json"


def save_char_tokenizer(directory, tokenizer) -> None:
    """Store a ``neural_arch.data.CharTokenizer`` next to a model (``char_tokenizer.json``)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / CHAR_TOKENIZER_NAME).write_text(json.dumps(tokenizer.state_dict()))


def load_tokenizer(directory):
    """The tokenizer saved with a model: ``char_tokenizer.json`` (characters) or ``tokenizer.json`` (BPE)."""
    path = Path(directory)
    if (path / CHAR_TOKENIZER_NAME).is_file():
        return CharTokenizer.from_state_dict(json.loads((path / CHAR_TOKENIZER_NAME).read_text()))
    if (path / "tokenizer.json").is_file():
        return BPETokenizer.from_pretrained(path)
    raise CheckpointError(f"no tokenizer in {str(path)!r}: expected {CHAR_TOKENIZER_NAME} or tokenizer.json")
