"""Sampling text from a character-level language model, one character at a time."""

from __future__ import annotations

import numpy as np

import neural_arch as na


def sample_text(model, tokenizer, prompt: str = "\n", max_new_chars: int = 300, temperature: float = 1.0,
                top_k: int | None = None, generator: na.Generator | None = None) -> str:
    """Continue ``prompt`` by ``max_new_chars`` characters sampled from ``model`` (ids (1, T) -> logits (1, T, V)).

    The context is cropped to the model's ``block_size``. Draws from ``generator``
    (default: a fresh ``na.Generator(0)``), never from the default generator, so
    sampling does not change a training run's random stream.
    """
    rng = (generator or na.Generator(0)).np
    ids = list(tokenizer.encode(prompt))
    block = getattr(model, "block_size", len(ids) + max_new_chars)
    was_training = model.training
    model.eval()
    with na.no_grad():
        for _ in range(max_new_chars):
            context = na.tensor(np.array([ids[-block:]], dtype=np.int64))
            logits = model(context).data[0, -1].astype(np.float64) / max(temperature, 1e-8)  # (V,)
            if top_k is not None:
                cutoff = np.sort(logits)[-min(top_k, len(logits))]
                logits = np.where(logits < cutoff, -np.inf, logits)
            p = np.exp(logits - logits.max())
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train(was_training)
    return tokenizer.decode(ids[len(tokenizer.encode(prompt)):])


def fill_masked_text(model, tokenizer, text: str, mask_prob: float = 0.15, generator: na.Generator | None = None
                     ) -> tuple[str, str]:
    """Hide about ``mask_prob`` of ``text``'s characters and let a masked LM fill them in.

    Returns (masked, filled): the text with the hidden characters shown as ``_``, and the
    text with each of them replaced by the model's most likely character. ``model`` maps
    ids (1, T) -> logits (1, T, V) and has ``mask_token_id`` and ``block_size``.
    """
    rng = (generator or na.Generator(0)).np
    ids = np.array(tokenizer.encode(text), dtype=np.int64)[: model.block_size]
    hidden = rng.random(len(ids)) < mask_prob
    inputs = np.where(hidden, model.mask_token_id, ids)
    was_training = model.training
    model.eval()
    with na.no_grad():
        logits = model(na.tensor(inputs[None])).data[0, :, : tokenizer.vocab_size]  # characters only
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
