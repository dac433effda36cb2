"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_cli.evaluation.metrics import classification_metrics, cross_entropy


def test_binary_metrics_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    m = classification_metrics(labels, probs, ["mass", "calcification"], positive_class=1)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["precision"] == {"mass": pytest.approx(0.5), "calcification": pytest.approx(2 / 3)}
    assert m["recall"] == {"mass": pytest.approx(0.5), "calcification": pytest.approx(2 / 3)}
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["f1_macro"] == pytest.approx((0.5 + 2 / 3) / 2)
    # positives score 0.7, 0.8, 0.4 vs negatives 0.1, 0.6: 5 of 6 pairs ranked right
    assert m["auc"] == pytest.approx(5 / 6)


def test_three_class_metrics_use_macro_one_vs_rest():
    labels = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[[0, 1, 2, 0, 2, 1]] * 0.8 + 0.2 / 3
    m = classification_metrics(labels, probs, ["baseline", "mass", "calcification"], None)
    assert np.sum(m["confusion_matrix"]) == 6
    assert m["f1"] == m["f1_macro"]
    assert 0.0 <= m["auc"] <= 1.0


def test_loss_is_the_mean_cross_entropy():
    labels = np.array([0, 1])
    probs = np.array([[0.8, 0.2], [0.4, 0.6]])
    expected = -(np.log(0.8) + np.log(0.6)) / 2
    assert cross_entropy(labels, probs, "softmax") == pytest.approx(expected, rel=1e-5)
