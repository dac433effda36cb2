"""The warnings a careful reviewer would raise about a scored run (``metrics.json``'s
``warnings``, printed at the end of the run). They never change the exit status.

Each rule reads the run's own numbers, so the same sentences come out of ``mammo train``,
``evaluate``, ``ensemble`` and ``baseline`` and of every holdout split:

- the model predicts one class for (almost) every test sample;
- the validation set is too small for early stopping to mean much;
- the training labels are imbalanced and no class weights were used;
- the test-set interval of the AUC is wider than ``evaluate.max_ci_width``;
- the model does not beat the scikit-learn baseline fitted on the same split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: a model "predicts one class" when that class takes this share of its test predictions
ONE_CLASS_SHARE = 0.95
#: a validation set this small (or with a class this small) makes early stopping noisy
SMALL_VALIDATION = 50
SMALL_VALIDATION_CLASS = 10
#: the most / least frequent training class ratio from which labels count as imbalanced
IMBALANCE_RATIO = 1.5
#: a comparison with the baseline is significant below this p-value
SIGNIFICANCE = 0.05


def one_class_warning(result: Mapping[str, Any]) -> str | None:
    """The model answers (almost) always the same class, although the test set is mixed."""
    matrix = np.asarray(result["confusion_matrix"])
    predicted, true = matrix.sum(axis=0), matrix.sum(axis=1)
    n = int(matrix.sum())
    top = int(np.argmax(predicted))
    if n == 0 or predicted[top] < ONE_CLASS_SHARE * n or true[top] >= ONE_CLASS_SHARE * n:
        return None
    name = result["class_names"][top]
    return (
        f"The model predicts {name} for {predicted[top]} of {n} test samples "
        f"({predicted[top] / n:.0%}) while {true[top] / n:.0%} are {name}: it does not "
        "separate the classes."
    )


def validation_warning(counts: Mapping[str, Mapping[str, int]]) -> str | None:
    """Early stopping and the restored best epoch rest on a tiny validation set."""
    val = counts.get("val")
    if not val:
        return None
    total, smallest = sum(val.values()), min(val.values())
    if total >= SMALL_VALIDATION and smallest >= SMALL_VALIDATION_CLASS:
        return None
    shown = ", ".join(f"{name} {n}" for name, n in val.items())
    return (
        f"The validation set has {total} samples ({shown}): early stopping and the restored "
        "best epoch rest on few samples and may be noise (more data or a larger "
        "trainer.val_split helps)."
    )


def imbalance_warning(
    counts: Mapping[str, Mapping[str, int]], class_weight: Mapping[str, float] | None
) -> str | None:
    """Imbalanced training labels and no class weights."""
    train = counts.get("train")
    if not train or class_weight:
        return None
    largest, smallest = max(train.values()), min(train.values())
    if smallest and largest / smallest < IMBALANCE_RATIO:
        return None
    shown = ", ".join(f"{name} {n}" for name, n in train.items())
    ratio = f"{largest / smallest:.1f}x" if smallest else "a class is empty"
    return (
        f"The training labels are imbalanced ({shown}: {ratio}) and no class weights were "
        "used (class_weights=balanced weighs them)."
    )


def interval_warning(result: Mapping[str, Any], max_width: float) -> str | None:
    """The test set is too small to pin the AUC down."""
    interval = (result.get("ci") or {}).get("auc")
    if not interval:
        return None
    low, high = interval
    if high - low <= max_width:
        return None
    n = sum(result["counts"]["test"].values())
    level = result.get("ci_level", 0.95)
    return (
        f"The {level:.0%} interval of the AUC is {high - low:.2f} wide [{low:.2f}, {high:.2f}] "
        f"on {n} test samples (evaluate.max_ci_width={max_width:g}): differences between "
        "models smaller than that are not measured by this test set."
    )


def baseline_warning(comparison: Mapping[str, Any] | None) -> str | None:
    """The model is not better than the baseline on the same split (a paired test)."""
    if not comparison:
        return None
    difference, p_value = comparison["difference"], comparison["p_value"]
    if difference is None or (difference > 0 and p_value is not None and p_value < SIGNIFICANCE):
        return None
    verb = "does not beat" if difference <= 0 else "is not significantly better than"
    low, high = comparison["ci"] or (None, None)
    interval = f" [{low:+.3f}, {high:+.3f}]" if low is not None else ""
    shown_p = "n/a" if p_value is None else f"{p_value:.2g}"
    return (
        f"The model {verb} the {comparison['model']} baseline on the same split: "
        f"{comparison['metric']} {comparison['b']:.3f} vs {comparison['a']:.3f} "
        f"(difference {difference:+.3f}{interval}, {comparison['method']} p = {shown_p})."
    )


def review(result: Mapping[str, Any], max_ci_width: float) -> list[str]:
    """Every warning that applies to the scored run ``result`` (a metrics.json payload)."""
    found = [
        one_class_warning(result),
        validation_warning(result["counts"]),
        imbalance_warning(result["counts"], result.get("class_weight")),
        interval_warning(result, max_ci_width),
        baseline_warning(result.get("baseline")),
    ]
    return [sentence for sentence in found if sentence]
