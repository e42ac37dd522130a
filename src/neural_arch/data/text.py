"""Text for character-level language models: the bundled Tiny Shakespeare corpus.

The corpus (1,115,394 characters, 65 distinct; public domain, see
PROVENANCE in the repository) ships inside the package, so the default
training job needs no download. As in nanoGPT's ``shakespeare_char``, the
first 90% is the training split and the last 10% the validation split, and
the vocabulary is the sorted set of characters of the whole text.
"""

from __future__ import annotations

import gzip
import importlib.resources

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neural_arch.autograd.tensor import Tensor
from neural_arch.data.dataset import Dataset, _check_index
from neural_arch.errors import ConfigError, DataError


def load_tiny_shakespeare() -> str:
    """The whole bundled corpus as one string."""
    data = importlib.resources.files("neural_arch.data").joinpath("tinyshakespeare.txt.gz").read_bytes()
    return gzip.decompress(data).decode("utf-8")


class CharTokenizer:
    """Characters <-> integer ids, ids in the order of the sorted vocabulary.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hole").tolist(), tok.decode([3, 1])
    ([2, 3, 1, 0], 'lh')
    """

    def __init__(self, chars):
        self.chars = list(chars)
        if len(set(self.chars)) != len(self.chars):
            raise ConfigError("CharTokenizer: the vocabulary has repeated characters")
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        # code point -> id table, so encoding is one vectorised lookup
        self._table = np.full(max(map(ord, self.chars), default=0) + 1, -1, dtype=np.int64)
        self._table[[ord(c) for c in self.chars]] = np.arange(len(self.chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text`` as an int64 array; unknown characters raise ``DataError``."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.where(codes < len(self._table), self._table[np.minimum(codes, len(self._table) - 1)], -1)
        if (ids < 0).any():
            bad = sorted({text[i] for i in np.flatnonzero(ids < 0)[:20]})
            raise DataError(f"CharTokenizer.encode: characters {bad} are not in the {self.vocab_size}-character "
                            "vocabulary")
        return ids

    def decode(self, ids) -> str:
        ids = ids.data if isinstance(ids, Tensor) else ids
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def state_dict(self) -> dict:
        return {"chars": "".join(self.chars)}

    @classmethod
    def from_state_dict(cls, state: dict) -> CharTokenizer:
        return cls(state["chars"])


class CharWindows(Dataset):
    """Next-character prediction: sample ``i`` is ``(ids[i:i+T], ids[i+1:i+T+1])`` with ``T = block_size``."""

    def __init__(self, ids: np.ndarray, block_size: int):
        if block_size < 1 or len(ids) <= block_size:
            raise DataError(f"CharWindows: need block_size >= 1 and more than block_size={block_size} tokens, "
                            f"got {len(ids)} tokens")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.block_size = int(block_size)
        self._windows = sliding_window_view(self.ids, self.block_size + 1)  # a view: no copy

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def __getitem__(self, index):
        w = self._windows[_check_index(index, len(self), "CharWindows")]
        return Tensor._wrap(w[:-1].copy()), Tensor._wrap(w[1:].copy())

    def get_batch(self, indices):
        w = self._windows[np.asarray(indices, dtype=np.int64)]  # (B, T + 1), a copy
        return Tensor._wrap(w[:, :-1]), Tensor._wrap(w[:, 1:])


class TinyShakespeare(CharWindows):
    """Windows of ``block_size`` characters from the train (first 90%) or val (last 10%) split.

    ``tokenizer`` is the 65-character vocabulary of the whole corpus.
    """

    def __init__(self, split: str = "train", block_size: int = 64):
        if split not in ("train", "val"):
            raise ConfigError(f"TinyShakespeare: split {split!r} is not one of train, val")
        text = load_tiny_shakespeare()
        self.tokenizer = CharTokenizer.from_text(text)
        ids = self.tokenizer.encode(text)
        n = int(0.9 * len(ids))
        super().__init__(ids[:n] if split == "train" else ids[n:], block_size)
        self.split = split
