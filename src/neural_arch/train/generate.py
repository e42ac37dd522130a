"""Sampling text from a character-level language model, one character at a time."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd import no_grad
from neural_arch.backend import Generator
from neural_arch.errors import ConfigError
from neural_arch.models.generation import process_logits, sample_next_token
from neural_arch.ops import tensor


def sample_text(model, tokenizer, prompt: str = "\n", max_new_chars: int = 300, temperature: float = 1.0,
                top_k: int | None = None, generator: Generator | None = None, top_p: float | None = None,
                greedy: bool = False) -> str:
    """Continue ``prompt`` by ``max_new_chars`` characters from ``model`` (ids (1, T) -> logits (1, T, V)).

    ``greedy``: the most likely character each step; otherwise sampled after temperature, top-k
    and top-p (nucleus) filtering, the same filters as :func:`neural_arch.models.generation.generate`
    (and the same range checks: temperature > 0, top_p in (0, 1], top_k >= 1).
    The context is cropped to the model's ``block_size``. Draws from ``generator``
    (default: a fresh ``Generator(0)``), never from the default generator, so
    sampling does not change a training run's random stream.
    """
    check_sampling(max_new_chars, temperature, top_k, top_p)
    rng = (generator or Generator(0)).np
    ids = list(tokenizer.encode(prompt))
    block = getattr(model, "block_size", len(ids) + max_new_chars)
    was_training = model.training
    model.eval()
    with no_grad():
        for _ in range(max_new_chars):
            context = tensor(np.array([ids[-block:]], dtype=np.int64))
            logits = model(context).data[:, -1]  # (1, V)
            if greedy:
                ids.append(int(logits[0].argmax()))
                continue
            scores = process_logits(logits, temperature, top_k, top_p)
            ids.append(int(sample_next_token(scores, rng)[0]))
    model.train(was_training)
    return tokenizer.decode(ids[len(tokenizer.encode(prompt)):])


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    """``ConfigError`` naming the option for a value outside its range."""
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature} (for the most likely token use greedy)")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1 (or None for no top-k filtering), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must lie in (0, 1], got {top_p}")


def fill_masked_text(model, tokenizer, text: str, mask_prob: float = 0.15, generator: Generator | None = None
                     ) -> tuple[str, str]:
    """Hide about ``mask_prob`` of ``text``'s characters and let a masked LM fill them in.

    Returns (masked, filled): the text with the hidden characters shown as ``_``, and the
    text with each of them replaced by the model's most likely character. ``model`` maps
    ids (1, T) -> logits (1, T, V) and has ``mask_token_id`` and ``block_size``.
    """
    rng = (generator or Generator(0)).np
    ids = np.array(tokenizer.encode(text), dtype=np.int64)[: model.block_size]
    hidden = rng.random(len(ids)) < mask_prob
    inputs = np.where(hidden, model.mask_token_id, ids)
    was_training = model.training
    model.eval()
    with no_grad():
        logits = model(tensor(inputs[None])).data[0, :, : tokenizer.vocab_size]  # characters only
    model.train(was_training)
    filled = np.where(hidden, logits.argmax(axis=-1), ids)
    chars = tokenizer.decode(ids)
    masked = "".join("_" if h else c for c, h in zip(chars, hidden))
    return masked, tokenizer.decode(filled)


def demo_text(model, tokenizer, n_chars: int) -> str:
    """What a run prints at its end: a sample for a causal LM, a filled-in line for a masked one."""
    if getattr(model, "mask_token_id", None) is None:
        return "sample:\n" + sample_text(model, tokenizer, "\n", n_chars, generator=None)
    line = "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun."
    masked, filled = fill_masked_text(model, tokenizer, line[:n_chars])
    return f"masked:\n{masked}\nfilled in:\n{filled}"
