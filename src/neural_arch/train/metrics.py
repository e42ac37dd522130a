"""Classification and language-model metrics on whole splits, from logits (N, C) and integer labels (N,).

    accuracy     mean(argmax(logits) == y)
    top5         mean(y among the 5 largest logits)          (``top_k_accuracy(logits, y, k)``)
    f1_macro     mean over classes c of 2 P_c R_c / (P_c + R_c), P_c = TP/(TP+FP), R_c = TP/(TP+FN);
                 a class with no true and no predicted samples is left out, one with 0/0 precision
                 or recall scores 0 (scikit-learn's ``f1_score(average="macro")``)
    loss         mean cross-entropy  -log softmax(logits)[y]
    perplexity   exp(loss)   (per token, for language models)

``METRICS`` maps the names ``neural-arch evaluate --metrics`` takes to these functions.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.errors import ConfigError


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = np.asarray(logits), np.asarray(labels).astype(np.int64)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ConfigError(f"metrics: expected logits (N, C) and labels (N,), got {logits.shape} and {labels.shape}")
    return logits, labels


def accuracy(logits, labels) -> float:
    logits, labels = _check(logits, labels)
    return float(np.mean(logits.argmax(axis=1) == labels))


def top_k_accuracy(logits, labels, k: int = 5) -> float:
    logits, labels = _check(logits, labels)
    k = min(k, logits.shape[1])
    top = np.argpartition(logits, -k, axis=1)[:, -k:]
    return float(np.mean((top == labels[:, None]).any(axis=1)))


def f1_macro(logits, labels) -> float:
    logits, labels = _check(logits, labels)
    pred = logits.argmax(axis=1)
    classes = np.union1d(np.unique(labels), np.unique(pred))
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (labels == c))
        fp = np.sum((pred == c) & (labels != c))
        fn = np.sum((pred != c) & (labels == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))  # = 2PR/(P+R)
    return float(np.mean(scores))


def cross_entropy(logits, labels) -> float:
    logits, labels = _check(logits, labels)
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def perplexity(logits, labels) -> float:
    return math.exp(cross_entropy(logits, labels))


METRICS = {"accuracy": accuracy, "top5": top_k_accuracy, "f1_macro": f1_macro, "loss": cross_entropy,
           "perplexity": perplexity}


def compute_metrics(names, logits, labels) -> dict[str, float]:
    """``{name: value}`` for the metric names in ``names`` (see ``METRICS``)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"metrics: {', '.join(unknown)} not one of {', '.join(METRICS)}")
    return {name: METRICS[name](logits, labels) for name in names}
