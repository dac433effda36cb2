"""Test-set metrics from predicted class probabilities (numpy, scikit-learn; no TensorFlow).

Every metric scores the rows of :func:`to_distribution`. A value that is undefined on the
given test set (the AUC of a set missing a class) is ``None``, so metrics.json stays strict
JSON.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

#: Keras' ``backend.epsilon()``: the clip bound of its cross-entropies
KERAS_EPSILON = 1e-7
#: reliability bins of the expected calibration error and the reliability diagram
CALIBRATION_BINS = 10


def to_distribution(probs: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1, as float64.

    A no-op for softmax outputs; sigmoid outputs are independent per-class scores and
    become a distribution. A row of zeros stays zeros (its sum is clipped at 1e-12, as the
    ``ToDistribution`` layer of ensembles does).
    """
    probs = np.asarray(probs, dtype=np.float64)
    return probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)


def cross_entropy(labels: np.ndarray, probs: np.ndarray, output_activation: str) -> float:
    """The training loss on the test set, unweighted: Keras' ``categorical_crossentropy``
    (softmax) or ``binary_crossentropy`` (sigmoid) on one-hot targets, averaged over samples.

    Computed as Keras computes it: in float32, softmax rows normalised, probabilities
    clipped to [1e-7, 1 - 1e-7]; the binary loss is the mean over the class columns of the
    raw sigmoid outputs.
    """
    labels = np.asarray(labels)
    onehot = np.eye(np.shape(probs)[1], dtype=np.float32)[labels]
    if output_activation == "softmax":
        p = _clip(to_distribution(probs))
        per_sample = -np.sum(onehot * np.log(p), axis=1)
    elif output_activation == "sigmoid":
        p = _clip(probs)
        per_sample = -np.mean(onehot * np.log(p) + (1 - onehot) * np.log(1 - p), axis=1)
    else:
        raise ValueError(f"output_activation={output_activation!r}; expected softmax or sigmoid")
    return float(np.mean(per_sample, dtype=np.float64))


def _clip(probs: np.ndarray) -> np.ndarray:
    eps = np.float32(KERAS_EPSILON)
    return np.clip(np.asarray(probs, dtype=np.float32), eps, np.float32(1) - eps)


def brier_per_sample(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Each sample's squared distance sum_k (p_k - y_k)^2 between its normalised
    probabilities and its one-hot label, in [0, 2]."""
    dist = to_distribution(probs)
    return np.sum((dist - np.eye(dist.shape[1])[np.asarray(labels)]) ** 2, axis=1)


class ReliabilityBins(NamedTuple):
    """Per bin of top-class confidence: sample count, mean confidence and accuracy
    (NaN in empty bins); ``edges`` are the bin boundaries 0, 0.1, ..., 1."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


def reliability_bins(
    labels: np.ndarray, probs: np.ndarray, bins: int = CALIBRATION_BINS
) -> ReliabilityBins:
    """Samples grouped by confidence, the normalised probability of the predicted
    (arg-max) class, into ``bins`` equal-width bins (lo, hi] of [0, 1] (the first bin
    also holds 0)."""
    dist = to_distribution(probs)
    confidence = dist.max(axis=1)
    correct = dist.argmax(axis=1) == np.asarray(labels)
    edges = np.arange(bins + 1) / bins
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=bins) / counts
        accuracy = np.bincount(index, correct, minlength=bins) / counts
    return ReliabilityBins(edges, counts, mean_confidence, accuracy)


def expected_calibration_error(
    labels: np.ndarray, probs: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """ECE = sum_b (n_b / N) |accuracy_b - confidence_b| over the bins of
    :func:`reliability_bins` (Guo et al. 2017): the mean gap between how sure the model
    is of its predicted class and how often that class is right. 0 is perfectly
    calibrated; at most 1."""
    binned = reliability_bins(labels, probs, bins)
    filled = binned.counts > 0
    gaps = np.abs(binned.accuracy[filled] - binned.confidence[filled])
    return float(np.sum(binned.counts[filled] * gaps) / binned.counts.sum())


def classification_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    positive_class: int | None,
) -> dict:
    """Accuracy, ROC AUC, F1, per-class precision/recall, confusion matrix, Brier, ECE.

    Rows of ``probs`` are scored as :func:`to_distribution` makes them; the predicted class
    is the arg-max. ``auc`` ranks the probabilities: the positive class's for a binary
    task, one-vs-rest macro (unweighted mean over classes) for more classes; it is
    ``None`` when a class is missing from ``labels`` (undefined). ``f1`` is the positive
    class's F1 for binary tasks and the macro F1 otherwise; an F1, precision or recall
    with a zero denominator is 0. ``brier`` is the multi-class Brier score, the mean of
    :func:`brier_per_sample` (range 0..2; on a binary task twice the usual one-column
    Brier score); ``ece`` is :func:`expected_calibration_error` with 10 bins.
    """
    labels = np.asarray(labels)
    n_classes = len(class_names)
    dist = to_distribution(probs)
    predicted = dist.argmax(axis=1)
    classes = np.arange(n_classes)
    if len(np.unique(labels)) < n_classes:
        auc = None
    elif n_classes == 2:
        auc = float(roc_auc_score(labels, dist[:, 1 if positive_class is None else positive_class]))
    else:
        auc = float(roc_auc_score(labels, dist, multi_class="ovr", average="macro", labels=classes))
    precision, recall, f1_per_class, _ = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    f1_macro = float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0))
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "auc": auc,
        "f1": float(f1_per_class[positive_class]) if positive_class is not None else f1_macro,
        "f1_macro": f1_macro,
        "precision": {name: float(v) for name, v in zip(class_names, precision, strict=True)},
        "recall": {name: float(v) for name, v in zip(class_names, recall, strict=True)},
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "brier": float(np.mean(brier_per_sample(labels, dist))),
        "ece": expected_calibration_error(labels, dist),
    }


def operating_point(
    labels: np.ndarray, scores: np.ndarray, positive_class: int, target_sensitivity: float
) -> dict:
    """The highest threshold whose sensitivity (positive-class recall) reaches the target.

    ``scores`` are the positive class's probabilities; a sample is called positive when
    its score is >= the threshold. Returns the threshold with the sensitivity and the
    specificity reached there (the point of :func:`sklearn.metrics.roc_curve` where the
    true-positive rate first reaches ``target_sensitivity``).
    """
    positives = np.asarray(labels) == positive_class
    fpr, tpr, thresholds = roc_curve(positives, scores)
    index = int(np.flatnonzero(tpr >= target_sensitivity)[0])
    return {
        "positive_class": positive_class,
        "target_sensitivity": float(target_sensitivity),
        "threshold": float(min(thresholds[index], 1.0)),
        "sensitivity": float(tpr[index]),
        "specificity": float(1.0 - fpr[index]),
    }
