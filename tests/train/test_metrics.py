"""The metrics of `neural-arch evaluate`, checked against scikit-learn's, and the command itself."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, top_k_accuracy_score

from neural_arch.errors import ConfigError
from neural_arch.train.metrics import accuracy, compute_metrics, cross_entropy, f1_macro, perplexity, top_k_accuracy


@pytest.mark.parametrize("seed, n, classes", [(0, 200, 10), (1, 37, 4), (2, 15, 12)])  # 12 classes: some unseen
def test_metrics_match_scikit_learn(seed, n, classes):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    logits[np.arange(n)[: n // 2], labels[: n // 2]] += 2.0  # better than chance, not perfect
    pred = logits.argmax(1)
    assert accuracy(logits, labels) == pytest.approx(accuracy_score(labels, pred))
    assert top_k_accuracy(logits, labels, 5) == pytest.approx(
        top_k_accuracy_score(labels, logits, k=5, labels=np.arange(classes)))
    assert f1_macro(logits, labels) == pytest.approx(f1_score(labels, pred, average="macro"))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected_loss = log_loss(labels, probs, labels=np.arange(classes))
    assert cross_entropy(logits, labels) == pytest.approx(expected_loss, rel=1e-5)
    assert perplexity(logits, labels) == pytest.approx(math.exp(expected_loss), rel=1e-5)


def test_unknown_metric_and_bad_shapes_are_errors():
    with pytest.raises(ConfigError, match="metrics: top3 not one of accuracy, top5, f1_macro, loss, perplexity"):
        compute_metrics(["top3"], np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ConfigError, match=r"expected logits \(N, C\) and labels \(N,\)"):
        accuracy(np.zeros((2, 3)), np.zeros(3))
