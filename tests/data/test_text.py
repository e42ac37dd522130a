"""The bundled Tiny Shakespeare corpus, the character tokenizer and next-character windows."""

import hashlib

import numpy as np
import pytest

from neural_arch.data import CharTokenizer, CharWindows, DataLoader, TinyShakespeare, load_tiny_shakespeare
from neural_arch.errors import ConfigError, DataError


def test_bundled_corpus_is_the_published_one():
    text = load_tiny_shakespeare()
    assert len(text) == 1_115_394
    assert hashlib.md5(text.encode()).hexdigest() == "6fb458f1232090904fb40fe944165e91"
    assert text.startswith("First Citizen:")


def test_tokenizer_round_trip_and_vocab():
    text = load_tiny_shakespeare()
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == 65 and tok.chars[0] == "\n" and tok.chars[1] == " "
    ids = tok.encode(text[:1000])
    assert ids.dtype == np.int64 and tok.decode(ids) == text[:1000]
    assert tok.encode("hello").tolist() == [tok.stoi[c] for c in "hello"]
    assert CharTokenizer.from_state_dict(tok.state_dict()).chars == tok.chars


def test_tokenizer_rejects_unknown_characters():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(DataError, match=r"\['z', 'é'\] are not in the 3-character vocabulary"):
        tok.encode("abzé")


def test_windows_are_shifted_by_one():
    ds = CharWindows(np.arange(10), block_size=4)
    assert len(ds) == 6
    x, y = ds[5]
    assert x.numpy().tolist() == [5, 6, 7, 8] and y.numpy().tolist() == [6, 7, 8, 9]
    bx, by = ds.get_batch([0, 5])
    assert bx.numpy().tolist() == [[0, 1, 2, 3], [5, 6, 7, 8]] and by.numpy()[1].tolist() == [6, 7, 8, 9]
    with pytest.raises(DataError, match="more than block_size=10"):
        CharWindows(np.arange(10), block_size=10)


def test_tiny_shakespeare_splits_90_10():
    train, val = TinyShakespeare("train", block_size=8), TinyShakespeare("val", block_size=8)
    n = 1_115_394
    assert len(train.ids) == int(0.9 * n) and len(val.ids) == n - int(0.9 * n)
    text = load_tiny_shakespeare()
    assert val.tokenizer.decode(val.ids[:50]) == text[int(0.9 * n):int(0.9 * n) + 50]
    x, y = next(iter(DataLoader(train, batch_size=3)))
    assert x.shape == (3, 8) and train.tokenizer.decode(x[0]) == "First Ci"
    with pytest.raises(ConfigError, match="'test' is not one of train, val"):
        TinyShakespeare("test")
