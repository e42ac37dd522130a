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
