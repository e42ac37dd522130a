"""The worker behind each endpoint: what one batch of embeddings or images runs, and the decode loop.

``make_worker(served, settings, metrics)`` returns an object with ``submit``, ``depth`` and
``close``: a :class:`Batcher` for embeddings and classification, a :class:`DecodeLoop` for completions
(a :class:`RecomputeDecodeLoop` for a language model without a key/value cache: an ONNX file).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.models import generation
from neural_arch.serve.batching import Batcher
from neural_arch.serve.decoding import DecodeLoop, RecomputeDecodeLoop
from neural_arch.serve.served import COMPLETIONS, EMBEDDINGS, ServedModel

__all__ = ["by_length", "classify_batch", "classify_text_batch", "embed_batch", "length_groups", "make_worker",
           "softmax_rows"]


def embed_batch(encoder, texts: list[str]) -> list[tuple[np.ndarray, int]]:
    """(embedding (D,) float32, token count) per text, in one forward (as ``SentenceEncoder.encode``)."""
    if encoder.do_lower_case:
        texts = [t.lower() for t in texts]
    batch = encoder.tokenizer(texts, max_length=encoder.max_seq_length)
    with no_grad():
        e = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy()
    counts = np.asarray(batch["attention_mask"]).sum(axis=1)
    return [(e[i].astype(np.float32), int(counts[i])) for i in range(len(texts))]


def softmax_rows(logits: np.ndarray) -> list[np.ndarray]:
    """Class probabilities per row of (B, C) logits, in float64."""
    return list(generation.softmax_rows(np.asarray(logits)))


def classify_batch(model, images: list[np.ndarray]) -> list[np.ndarray]:
    """Class probabilities (softmax of the logits) per image, in one forward."""
    with no_grad():
        return softmax_rows(model(Tensor._wrap(np.stack(images).astype(np.float32))).numpy())


def classify_text_batch(model, tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Class probabilities per text of a sequence classifier, in one forward (padded to the longest text)."""
    batch = tokenizer(texts)
    with no_grad():
        return softmax_rows(model(batch["input_ids"], attention_mask=batch["attention_mask"],
                                  token_type_ids=batch["token_type_ids"]).logits.numpy())


def length_groups(lengths: list[int], call_cost: float) -> list[int]:
    """Where to cut ascending ``lengths`` into runs of one forward each, so that the padded size (each run
    padded to its longest: count x longest) plus ``call_cost`` per forward is least. Returns the cut
    points, from 0 to ``len(lengths)``; exact (dynamic programming) up to 256 items, else 8 equal runs."""
    n = len(lengths)
    if n > 256:
        return sorted({round(i * n / 8) for i in range(9)})
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * lengths[j - 1] + call_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    points, j = [n], n
    while j > 0:
        j = cut[j]
        points.append(j)
    return points[::-1]


def by_length(run: Callable[[list[str]], list], call_cost: float = 96.0) -> Callable[[list[str]], list]:
    """``run`` on a batch of texts as a few forwards of texts of similar length (results in the input order).

    An encoder pads a batch to its longest text; with texts of mixed lengths half the batch can be padding.
    Sorting by length in characters and cutting where it pays (:func:`length_groups`; ``call_cost`` is a
    forward's fixed cost in characters of padded text) computes mostly real tokens for the cost of a few
    more, smaller forwards. A text's result does not depend on the texts that share its forward (padding
    is masked)."""
    def grouped(texts: list[str]) -> list:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        cuts = length_groups([len(texts[i]) for i in order], call_cost)
        out = [None] * len(texts)
        for a, b in zip(cuts, cuts[1:]):
            part = order[a:b]
            for i, result in zip(part, run([texts[i] for i in part])):
                out[i] = result
        return out

    return grouped


def make_worker(served: ServedModel, settings, metrics):
    """The worker thread that runs ``served`` with the batching limits of ``settings``."""
    wait = settings.max_wait_ms / 1000.0
    if served.kind == COMPLETIONS and not getattr(served.model, "key_value_cache", True):  # an ONNX file
        return RecomputeDecodeLoop(served.model, served.tokenizer, settings.max_batch_size, wait, settings.max_queue,
                                   eos_token_id=served.eos_token_id, on_step=metrics.observe_step)
    if served.kind == COMPLETIONS:
        return DecodeLoop(served.model, served.tokenizer, settings.max_batch_size, wait, settings.max_queue,
                          eos_token_id=served.eos_token_id, on_step=metrics.observe_step)
    run = _batch_function(served)
    if settings.length_groups and _takes_texts(served):
        run = by_length(run, served.forward_cost)
    return Batcher(run, settings.max_batch_size, wait, settings.max_queue, on_batch=metrics.observe_batch,
                   name=served.kind)


def warm_up(served: ServedModel) -> None:
    """One small forward of each kind the worker will run (compiles the kernels, fills caches); called
    before the worker starts, so no two threads ever run the model at once."""
    if served.kind == COMPLETIONS and not getattr(served.model, "key_value_cache", True):
        served.model.logits(np.zeros((1, 2), np.int64))
    elif served.kind == COMPLETIONS:
        with no_grad():
            out = served.model(np.zeros((1, 2), np.int64), use_cache=True, logits_to_keep=1)
            served.model(np.zeros((1, 1), np.int64), attention_mask=np.ones((1, 3), np.int64),
                         position_ids=np.full((1, 1), 2, np.int64), past_key_values=out.past_key_values,
                         use_cache=True, logits_to_keep=1)
    else:
        _batch_function(served)(["warm up"] if _takes_texts(served) else [_blank_image(served)])


def _takes_texts(served: ServedModel) -> bool:
    return served.kind == EMBEDDINGS or served.inputs == "text"


def _batch_function(served: ServedModel) -> Callable[[list], list]:
    """What one batch of embeddings or classification runs: ``served.run_batch``, or the built-in one."""
    if served.run_batch is not None:
        return served.run_batch
    if served.kind == EMBEDDINGS:
        return lambda texts: embed_batch(served.model, texts)
    if served.inputs == "text":
        return lambda texts: classify_text_batch(served.model, served.tokenizer, texts)
    return lambda images: classify_batch(served.model, images)


def _blank_image(served: ServedModel) -> np.ndarray:
    w, h = served.image_size
    return served.transform(np.zeros((h, w), np.uint8))
