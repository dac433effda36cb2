"""Test-set metrics from predicted class probabilities (scikit-learn)."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from mammo_cli.training.fit import LOSSES


def to_distribution(probs: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1 (a no-op for softmax; sigmoid outputs are scores per class)."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)


def cross_entropy(labels: np.ndarray, probs: np.ndarray, output_activation: str) -> float:
    """The training loss (categorical or binary cross-entropy) on the test set, unweighted."""
    onehot = keras.utils.to_categorical(labels, probs.shape[1]).astype(np.float32)
    loss = keras.losses.get(LOSSES[output_activation])(onehot, probs.astype(np.float32))
    return float(np.mean(keras.ops.convert_to_numpy(loss)))


def classification_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    positive_class: int | None,
) -> dict:
    """Accuracy, ROC AUC, F1, per-class precision/recall and the confusion matrix.

    ``probs`` rows are normalised to sum to one (a no-op for softmax; sigmoid outputs are
    scores per class). The predicted class is the arg-max. AUC uses the probabilities:
    the positive class's score for binary tasks, one-vs-rest macro for more classes. ``f1``
    is the positive class's F1 for binary tasks and the macro F1 otherwise.
    """
    n_classes = len(class_names)
    scores = to_distribution(probs)
    predicted = scores.argmax(axis=1)
    classes = np.arange(n_classes)
    present = np.unique(labels)
    if len(present) < 2:
        auc = float("nan")
    elif n_classes == 2:
        auc = float(roc_auc_score(labels, scores[:, positive_class or 1]))
    else:
        auc = float(
            roc_auc_score(labels, scores, multi_class="ovr", average="macro", labels=classes)
        )
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
    from sklearn.metrics import roc_curve

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
