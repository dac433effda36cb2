"""Metrics against hand-computed values and against Keras' own losses."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mammo_cli.evaluation.metrics import classification_metrics, cross_entropy, to_distribution


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
    # squared errors per sample: 2 * (1 - p_true)^2 on a binary task
    assert m["brier"] == pytest.approx(2 * (0.01 + 0.36 + 0.09 + 0.04 + 0.36) / 5)


def test_three_class_metrics_use_macro_one_vs_rest():
    labels = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[[0, 1, 2, 0, 2, 1]] * 0.8 + 0.2 / 3
    m = classification_metrics(labels, probs, ["baseline", "mass", "calcification"], None)
    assert np.sum(m["confusion_matrix"]) == 6
    assert m["f1"] == m["f1_macro"]
    # class 0 is ranked perfectly (AUC 1); classes 1 and 2: of their 2 x 4 positive /
    # negative pairs, the high positive beats 3 negatives and ties 1, the low positive
    # ties 3 and loses 1: (3 + 1/2 + 3/2) / 8 = 5/8 (ties count half)
    assert m["auc"] == pytest.approx((1 + 5 / 8 + 5 / 8) / 3)


def test_undefined_auc_is_none_and_the_metrics_are_strict_json():
    labels = np.array([1, 1, 1])
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    m = classification_metrics(labels, probs, ["mass", "calcification"], positive_class=1)
    assert m["auc"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_a_class_missing_from_a_three_class_test_set_leaves_the_auc_undefined():
    labels = np.array([0, 1, 0, 1])
    probs = np.full((4, 3), 1 / 3)
    assert classification_metrics(labels, probs, ["a", "b", "c"], None)["auc"] is None


def test_to_distribution_leaves_softmax_rows_and_normalises_sigmoid_rows():
    softmax = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    assert to_distribution(softmax).dtype == np.float64
    np.testing.assert_allclose(to_distribution(softmax), softmax)
    sigmoid = np.array([[0.9, 0.3], [0.2, 0.2], [0.0, 0.0]])
    np.testing.assert_allclose(to_distribution(sigmoid), [[0.75, 0.25], [0.5, 0.5], [0, 0]])


def test_loss_is_the_mean_cross_entropy():
    labels = np.array([0, 1])
    probs = np.array([[0.8, 0.2], [0.4, 0.6]])
    expected = -(np.log(0.8) + np.log(0.6)) / 2
    assert cross_entropy(labels, probs, "softmax") == pytest.approx(expected, rel=1e-5)


def _keras_loss(labels: np.ndarray, probs: np.ndarray, name: str) -> float:
    import keras

    onehot = keras.utils.to_categorical(labels, probs.shape[1]).astype(np.float32)
    loss = keras.losses.get(name)(onehot, probs.astype(np.float32))
    return float(np.mean(keras.ops.convert_to_numpy(loss)))


@pytest.mark.parametrize(
    ("activation", "keras_name"),
    [("softmax", "categorical_crossentropy"), ("sigmoid", "binary_crossentropy")],
)
def test_cross_entropy_equals_keras(activation, keras_name):
    """Random outputs plus saturated ones (exact 0 and 1, where Keras' clipping decides),
    two and three classes."""
    rng = np.random.default_rng(0)
    for n_classes in (2, 3):
        labels = rng.integers(0, n_classes, 200)
        if activation == "softmax":
            probs = rng.dirichlet(np.ones(n_classes), 200)
            probs[:10] = np.eye(n_classes)[(labels[:10] + 1) % n_classes]  # confidently wrong
            probs[10:20] = np.eye(n_classes)[labels[10:20]]  # confidently right
        else:
            probs = rng.random((200, n_classes))
            probs[:20] = rng.integers(0, 2, (20, n_classes))  # saturated sigmoids: 0.0 / 1.0
        probs = probs.astype(np.float32)
        expected = _keras_loss(labels, probs, keras_name)
        assert cross_entropy(labels, probs, activation) == pytest.approx(expected, abs=1e-6)


def test_metrics_module_does_not_import_tensorflow():
    code = (
        "import sys, mammo_cli.evaluation.metrics, mammo_cli.evaluation.statistics;"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
