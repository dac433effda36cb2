"""Scoring a test set and writing a scored run folder: the same for every command.

``mammo train`` (and each holdout split), ``mammo evaluate``, ``mammo ensemble`` and
``mammo baseline`` all end here: the class probabilities of the test samples become the
contract's metrics, ``test_predictions.csv`` (one row per test sample, from which every
later comparison is computed without re-running a model), the plots, and, written last,
``metrics.json``. No TensorFlow here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from mammo_cli.data.tasks import TaskView, positive_class
from mammo_cli.evaluation.metrics import (
    classification_metrics,
    cross_entropy,
    operating_point,
    to_distribution,
)
from mammo_cli.evaluation.plots import (
    save_confusion_matrix,
    save_reliability_diagram,
    save_roc_curve,
)
from mammo_cli.evaluation.review import review
from mammo_cli.evaluation.statistics import bootstrap_intervals
from mammo_cli.files import write_json, write_text
from mammo_cli.provenance import key_facts
from mammo_cli.runs.folder import (
    METRICS_FILE,
    PLOTS,
    PROVENANCE_FILE,
    TEST_PREDICTIONS_FILE,
    read_json,
)

#: the contract's test metrics, in the order metrics.json lists them
METRIC_KEYS = (
    "accuracy",
    "loss",
    "auc",
    "f1",
    "f1_macro",
    "precision",
    "recall",
    "confusion_matrix",
)


def score(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    positive: int | None,
    output_activation: str,
) -> dict[str, Any]:
    """The contract's metrics of raw class probabilities (the loss is the training loss
    of ``output_activation``; the other metrics score the rows as distributions)."""
    metrics = classification_metrics(labels, probs, class_names, positive)
    metrics["loss"] = cross_entropy(labels, probs, output_activation)
    return {**{key: metrics[key] for key in METRIC_KEYS}, **metrics}


def test_predictions_csv(test: TaskView, probs: np.ndarray) -> str:
    """``index, course_index, unit, label, prob_<class>..., predicted``: one row per test
    sample in test-set order; probabilities as the metrics score them (rows sum to 1)."""
    units, _ = test.bootstrap_units()
    rows = to_distribution(probs)
    names = test.class_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["index", "course_index", "unit", "label", *(f"prob_{n}" for n in names), "predicted"]
    )
    for index, (label, row) in enumerate(zip(test.labels, rows, strict=True)):
        writer.writerow(
            [
                index,
                int(test.course_index[index]),
                int(units[index]),
                names[label],
                *(repr(float(p)) for p in row),
                names[int(np.argmax(row))],
            ]
        )
    return buffer.getvalue()


def intervals(
    test: TaskView, probs: np.ndarray, positive: int | None, settings: Any, seed: int
) -> dict[str, Any]:
    """The bootstrap intervals of the test metrics and how they were made: ``ci``
    (``{metric: [low, high] | null}``), ``ci_level``, ``ci_method`` and ``bootstrap``
    (``resamples``, ``seed``, ``unit``: sample | pair | patient)."""
    units, unit = test.bootstrap_units()
    bootstrap = settings.bootstrap
    ci = bootstrap_intervals(
        test.labels,
        to_distribution(probs),
        positive,
        units=None if unit == "sample" else units,
        resamples=bootstrap.resamples,
        seed=seed,
        level=bootstrap.level,
        method=str(bootstrap.method),
    )
    return {
        "ci": {name: None if bounds is None else list(bounds) for name, bounds in ci.items()},
        "ci_level": bootstrap.level,
        "ci_method": f"bootstrap-{bootstrap.method}",
        "bootstrap": {"resamples": bootstrap.resamples, "seed": seed, "unit": unit},
    }


def write_results(
    run_dir: Path,
    result: dict[str, Any],
    test: TaskView,
    probs: np.ndarray,
    title: str,
    positive: int | None,
    settings: Any,
) -> dict[str, Any]:
    """Write the scored run: plots, ``test_predictions.csv``, then ``metrics.json``
    (last: its presence means the run finished), with the intervals of the test metrics
    and the reviewer's ``warnings`` (``settings``: the ``evaluate`` config group). Binary
    tasks get ``roc_curve.png`` and, with ``evaluate.target_sensitivity``, the
    ``operating_point``."""
    result = {**result, **intervals(test, probs, positive, settings, result["seed"])}
    target_sensitivity = settings.target_sensitivity
    names = test.class_names
    save_confusion_matrix(
        result["confusion_matrix"], names, run_dir / PLOTS["confusion_matrix"], title
    )
    if positive is not None and len(np.unique(test.labels)) == 2:
        scores = to_distribution(probs)[:, positive]
        point = (
            None
            if target_sensitivity is None
            else operating_point(test.labels, scores, positive, target_sensitivity)
        )
        if point is not None:
            result = {**result, "operating_point": point}
        save_roc_curve(
            (test.labels == positive).astype(int),
            scores,
            names[positive],
            run_dir / PLOTS["roc_curve"],
            f"{title}: ROC ({names[positive]} positive)",
            point,
        )
    save_reliability_diagram(
        test.labels, to_distribution(probs), run_dir / PLOTS["calibration"], f"{title}: calibration"
    )
    write_text(run_dir / TEST_PREDICTIONS_FILE, test_predictions_csv(test, probs))
    result["warnings"] = review(result, settings.max_ci_width)
    provenance = run_dir / PROVENANCE_FILE
    if provenance.is_file():
        result["provenance"] = key_facts(read_json(provenance))
    write_json(run_dir / METRICS_FILE, result)
    return result


def task_positive(task: Any) -> int | None:
    """The positive class index of a task config (None for multi-class tasks)."""
    return positive_class(list(task.classes), task.positive_class)
