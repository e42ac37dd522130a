"""Decoder plumbing shared by the causal language models, and ``generate()``.

What GPT-2 and the modern transformer share, so each model file only says
what is particular to it:

- ``CausalLMOutputWithPast``: what calling a model returns (``.logits``, ...).
- ``token_ids``: checks and converts the ids a user passes.
- ``attention_bias``: the causal + padding mask, as an additive bias.
- ``position_ids_from_mask``, ``causal_lm_loss``, ``head_logits_and_loss``, ``matrix_decay_groups``.
- ``generate``: greedy or sampled decoding (temperature, top-k, top-p), a
  stop token and ``max_new_tokens``, with a key/value cache so that each new
  token runs the model on one position only.

The key/value cache is the legacy Hugging Face format: a tuple with one
``(key, value)`` pair per layer, each of shape ``(B, n_kv_heads, T_past, head_dim)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neural_arch import ops
from neural_arch.autograd import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import to_numpy
from neural_arch.backend.random import get_generator
from neural_arch.errors import ConfigError, DTypeError, IndexingError, ShapeError, shape_str
from neural_arch.nn import functional as F

__all__ = ["CausalLMOutputWithPast", "GenerationMixin", "generate", "process_logits", "sample_next_token"]


@dataclass
class CausalLMOutputWithPast:
    """What a causal LM returns, named as in ``transformers``.

    logits: (B, T, vocab) Tensor; loss: scalar Tensor when ``labels`` were given;
    past_key_values: the key/value cache (a tuple of ``(k, v)`` per layer) when ``use_cache``;
    hidden_states: the input of every block plus the final normalised output, when asked for.
    """

    logits: Tensor
    loss: Tensor | None = None
    past_key_values: tuple | None = None
    hidden_states: tuple | None = None

    def __getitem__(self, key: str):  # out["logits"], as transformers' ModelOutput allows
        return getattr(self, key)


# -- inputs -----------------------------------------------------------------------------------------
def token_ids(input_ids, vocab_size: int, op: str) -> np.ndarray:
    """A (B, T) int64 array from a Tensor, array or nested list, with the mistakes named."""
    ids = to_numpy(input_ids.data if isinstance(input_ids, Tensor) else input_ids)  # CuPy -> host: ids are tiny
    if ids.dtype.kind not in "iu":
        raise DTypeError(f"{op}: input_ids must be integer token ids, got dtype {ids.dtype}")
    if ids.ndim != 2:
        raise ShapeError(f"{op}: input_ids must have shape (batch, seq_len), got {shape_str(ids.shape)}; "
                         "add a batch dim for a single sequence, e.g. ids[None]")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise IndexingError(f"{op}: token ids must lie in [0, {vocab_size}) (vocab_size), "
                            f"got values in [{ids.min()}, {ids.max()}]")
    return ids.astype(np.int64, copy=False)


def position_ids_from_mask(attention_mask: np.ndarray) -> np.ndarray:
    """(B, T) positions counting only unmasked tokens; padding gets 1 (any value works: it is masked).

    What ``generate`` passes, so that a left-padded prompt starts at position 0 just like the unpadded
    one; a model's forward without position ids counts ``past .. past + T - 1``, as transformers'."""
    pos = np.cumsum(attention_mask, axis=-1) - 1
    return np.where(attention_mask == 0, 1, pos).astype(np.int64)


def attention_bias(attention_mask, past_length: int, T: int, dtype):
    """The mask for ``scaled_dot_product_attention``: ``(bias, is_causal)``.

    Query i (absolute position past_length + i) may attend key j when
    ``j <= past_length + i`` and ``attention_mask[b, j] == 1``. Returns
    ``(None, True)`` for a plain causal prompt, ``(None, False)`` for one new
    token with no padding, otherwise an additive (B, 1, T, past_length + T)
    bias: 0 where allowed, the most negative float where not.

    NOTE: the most negative finite float, not -inf, as transformers' eager
    attention does: a row with nothing to attend to (a left-pad query) then
    averages all values instead of producing NaN, and NaN would leak into
    every later position through 0 * NaN in the next layer.
    """
    S = past_length + T
    if attention_mask is not None:
        mask = attention_mask.data if isinstance(attention_mask, Tensor) else np.asarray(attention_mask)
        if mask.ndim != 2 or mask.shape[1] != S:
            raise ShapeError(f"attention_mask must have shape (batch, past + seq_len) = (B, {S}), "
                             f"got {shape_str(mask.shape)}")
        if bool(np.all(mask != 0)):
            attention_mask = None
    if attention_mask is None:
        if T == 1:
            return None, False
        if past_length == 0:
            return None, True
        allowed = (np.arange(S)[None, :] <= past_length + np.arange(T)[:, None])[None, None]
    else:
        causal = np.arange(S)[None, :] <= past_length + np.arange(T)[:, None]  # (T, S)
        allowed = causal[None, None] & (mask != 0)[:, None, None, :]  # (B, 1, T, S)
    dtype = np.dtype(dtype)
    bias = np.where(allowed, dtype.type(0), np.finfo(dtype).min).astype(dtype)
    return ops.tensor(bias), False


def causal_lm_loss(logits: Tensor, labels) -> Tensor:
    """Cross-entropy of predicting token t+1 from positions <= t, as transformers:
    ``labels`` are the input ids (shifted here); -100 marks positions to ignore."""
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    V = logits.shape[-1]
    shifted = logits[:, :-1, :].reshape(-1, V)
    target = ops.tensor(np.ascontiguousarray(labels[:, 1:]).reshape(-1).astype(np.int64))
    return F.cross_entropy(shifted, target, ignore_index=-100)



def head_logits_and_loss(lm_head, x: Tensor, labels, logits_to_keep: int) -> tuple:
    """(logits (B, T, vocab_size), loss or None): the output head on the last ``logits_to_keep``
    positions of ``x`` (0: all), and :func:`causal_lm_loss` when ``labels`` are given."""
    if logits_to_keep:
        x = x[:, -logits_to_keep:, :]
    logits = lm_head(x)
    return logits, (None if labels is None else causal_lm_loss(logits, labels))


def matrix_decay_groups(model, weight_decay: float) -> list[dict]:
    """Two parameter groups, as nanoGPT: ``weight_decay`` on the 2-D weights (matmuls, embeddings), none
    on the rest (biases, norm gains); a tied matrix counts once."""
    params = list({id(p): p for p in model.parameters()}.values())
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]

# -- choosing the next token ------------------------------------------------------------------------
def process_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> np.ndarray:
    """Temperature, then top-k, then top-p (nucleus) filtering, as transformers' logits warpers.

    logits: (B, V). Filtered-out tokens get -inf.
    top-k keeps every token whose logit is >= the k-th largest; top-p sorts
    ascending and drops tokens while the cumulative probability stays
    <= 1 - top_p, always keeping the most likely token.
    """
    scores = logits.astype(np.float32) / np.float32(temperature) if temperature != 1.0 else logits.astype(np.float32)
    if top_k is not None and top_k < scores.shape[-1]:
        kth = np.partition(scores, -top_k, axis=-1)[:, -top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    if top_p is not None and top_p < 1.0:
        scores = top_p_filter(scores, np.asarray([top_p]))
    return scores


def top_p_filter(scores: np.ndarray, top_p: np.ndarray) -> np.ndarray:
    """``scores`` (B, V) with -inf on the tokens top-p drops, ``top_p`` one value per row (or one for all).

    Sorted ascending, tokens are dropped while the cumulative probability stays <= 1 - top_p (none
    where top_p is 1); the most likely token always stays."""
    top_p = top_p.reshape(-1, 1)
    order = np.argsort(scores, axis=-1, kind="stable")  # ascending
    cum = np.cumsum(softmax_rows(np.take_along_axis(scores, order, axis=-1)), axis=-1)
    remove_sorted = (cum <= (1 - top_p)) & (top_p < 1)
    remove_sorted[:, -1] = False  # keep the best
    remove = np.zeros_like(remove_sorted)
    np.put_along_axis(remove, order, remove_sorted, axis=-1)
    return np.where(remove, -np.inf, scores)


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """softmax over the last axis, in float64 (the sampling distribution of a row of scores)."""
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sample_next_token(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row, drawn from softmax(scores) by inverting the CDF (vectorised over rows)."""
    cdf = np.cumsum(softmax_rows(scores), axis=-1)
    u = rng.random((scores.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), scores.shape[-1] - 1).astype(np.int64)


def _check(max_new_tokens, temperature, top_k, top_p) -> None:
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ConfigError(f"generate: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not temperature > 0:
        raise ConfigError(f"generate: temperature must be > 0, got {temperature!r} (use do_sample=False for greedy)")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ConfigError(f"generate: top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"generate: top_p must lie in (0, 1], got {top_p!r}")


def generate(model, input_ids, max_new_tokens: int = 20, do_sample: bool = False, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, eos_token_id=None, pad_token_id=None,
             attention_mask=None, use_cache: bool = True, generator=None, context_window: int | None = None) -> Tensor:
    """Continue each row of ``input_ids`` (B, T) by up to ``max_new_tokens`` tokens; returns (B, T + n).

    Greedy (``do_sample=False``) takes the argmax; sampling applies
    temperature, top-k and top-p first. A row that produces ``eos_token_id``
    (an int or a list) is finished: it is filled with ``pad_token_id``
    (default: the eos token) and decoding stops once every row is. For a
    batch of prompts of different lengths, left-pad them and pass
    ``attention_mask`` (1 = token, 0 = padding). ``use_cache=False``
    re-runs the whole sequence each step (same tokens, slower).

    ``context_window=n`` lets the text grow past what the model can see (a
    GPT-2 has only ``n_positions`` position embeddings): once the model's
    view would exceed n tokens, it restarts on the last n // 2 of them (one
    prompt pass), then continues with the cache. Without it, a sequence
    longer than the model's positions is a ``ShapeError``.
    """
    _check(max_new_tokens, temperature, top_k, top_p)
    config = model.config
    ids = token_ids(input_ids, config.vocab_size, "generate")
    B, T = ids.shape
    limit = getattr(model, "max_positions", None)
    if context_window is not None:
        ok = isinstance(context_window, (int, np.integer)) and 2 <= context_window <= (limit or context_window)
        if not ok:
            raise ConfigError(f"generate: context_window must be an integer in [2, {limit or 'inf'}], "
                              f"got {context_window!r}")
    elif limit is not None and T + max_new_tokens > limit:
        raise ShapeError(f"generate: prompt length {T} + max_new_tokens {max_new_tokens} exceeds the model's "
                         f"{limit} positions; ask for fewer tokens or pass context_window={limit} to slide")
    mask = np.ones((B, T), np.int64) if attention_mask is None else np.asarray(
        attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask).astype(np.int64)
    if mask.shape != (B, T):
        raise ShapeError(f"generate: attention_mask must have the shape of input_ids {shape_str((B, T))}, "
                         f"got {shape_str(mask.shape)}")
    eos = [] if eos_token_id is None else list(np.atleast_1d(eos_token_id))
    pad = pad_token_id if pad_token_id is not None else (eos[0] if eos else 0)
    rng = get_generator(generator)
    unfinished = np.ones(B, dtype=bool)
    was_training = model.training
    model.eval()
    past, start = None, 0  # the model sees ids[:, start:]; the cache holds all of it but the newest token
    try:
        with no_grad():
            for _ in range(max_new_tokens):
                if context_window is not None and ids.shape[1] - start > context_window:
                    start, past = ids.shape[1] - context_window // 2, None  # slide: a fresh prompt pass
                step_ids = ids[:, start:] if past is None else ids[:, -1:]
                view_mask = mask[:, start:]
                positions = position_ids_from_mask(view_mask)[:, -step_ids.shape[1]:]
                out = model(step_ids, attention_mask=view_mask, position_ids=positions, past_key_values=past,
                            use_cache=use_cache, logits_to_keep=1)
                logits = out.logits.data[:, -1, :]
                logits = logits.get() if hasattr(logits, "get") else logits
                if do_sample:
                    nxt = sample_next_token(process_logits(logits, temperature, top_k, top_p), rng)
                else:
                    nxt = logits.argmax(axis=-1).astype(np.int64)
                nxt = np.where(unfinished, nxt, pad)
                ids = np.concatenate([ids, nxt[:, None]], axis=1)
                mask = np.concatenate([mask, np.ones((B, 1), np.int64)], axis=1)
                past = out.past_key_values if use_cache else None
                if eos:
                    unfinished &= ~np.isin(nxt, eos)
                    if not unfinished.any():
                        break
    finally:
        model.train(was_training)
    return ops.tensor(ids)


class GenerationMixin:
    """Gives a causal LM ``model.generate(input_ids, ...)``; see :func:`generate`."""

    def generate(self, input_ids, max_new_tokens: int = 20, **kwargs) -> Tensor:
        return generate(self, input_ids, max_new_tokens=max_new_tokens, **kwargs)
