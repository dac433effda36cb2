"""Paired comparisons of scored runs on the same test samples (``mammo compare``, the
``p_vs_best`` column of ``mammo report``, an ensemble against its best member).

Everything is computed from the runs' ``test_predictions.csv``: no model runs again. Two
runs are comparable when they answer the same classification and scored the same test
samples in the same order (same count, labels and course indices).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mammo_cli.data.tasks import positive_class
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.statistics import paired_difference
from mammo_cli.runs.folder import PROVENANCE_FILE, RunFolder, TestPredictions, read_json

#: metrics for which a lower value is better
LOWER_IS_BETTER = ("brier",)


def same_samples(a: TestPredictions, b: TestPredictions) -> str | None:
    """Why two runs' test predictions are not of the same samples, or None if they are."""
    if a.class_names != b.class_names:
        return f"different classes ({', '.join(a.class_names)} vs {', '.join(b.class_names)})"
    if len(a.labels) != len(b.labels):
        return f"different test sets ({len(a.labels)} vs {len(b.labels)} samples)"
    if not (np.array_equal(a.labels, b.labels) and np.array_equal(a.course_index, b.course_index)):
        return "different test samples (labels or order differ)"
    return None


def provenance_notes(runs: dict[str, RunFolder], files: Any = None) -> list[str]:
    """One sentence per data file, version or device that differs between ``runs``
    (name -> folder), from their provenance.json; runs without one are left out."""
    from mammo_cli.provenance import differences

    recorded = {}
    for name, run in runs.items():
        path = run / PROVENANCE_FILE
        try:
            if path.is_file():
                recorded[name] = read_json(path)
        except MammoError:  # a damaged record: the run is listed as unreadable elsewhere
            continue
    return [difference.note() for difference in differences(recorded, files)]


def different_test_data(a: RunFolder, b: RunFolder) -> str | None:
    """Why two runs did not score the same test data (their provenance's sha256 of the
    test files differ), or None (also when a run recorded no fingerprints)."""
    from mammo_cli.data.fingerprints import TEST_FILES

    notes = [
        note for note in provenance_notes({"a": a, "b": b}, TEST_FILES) if note.startswith("data")
    ]
    return "; ".join(notes) or None


def paired(
    a: TestPredictions,
    b: TestPredictions,
    metric: str,
    positive: int | None,
    settings: Any,
    seed: int,
) -> dict[str, Any]:
    """``paired_difference`` of ``metric`` (b - a) on two runs' rows of the same samples,
    resampling their bootstrap units."""
    reason = same_samples(a, b)
    if reason is not None:
        raise MammoError(f"the runs cannot be compared: {reason}")
    units = a.units if len(np.unique(a.units)) < len(a.units) else None
    return paired_difference(
        a.labels,
        a.probs,
        b.probs,
        metric,
        positive,
        units=units,
        resamples=settings.resamples,
        seed=seed,
        level=settings.level,
    )


def compare_runs(a: RunFolder, b: RunFolder, settings: Any, seed: int) -> dict[str, Any]:
    """The content of ``compare.json``: ``metric``, ``a``, ``b``, ``difference`` (b - a),
    ``ci``, ``p_value``, ``method``, ``n``, the two runs and the interval level."""
    task = a.task
    positive = positive_class(list(task.classes), task.positive_class)
    metric = str(settings.metric)
    result = paired(a.test_predictions(), b.test_predictions(), metric, positive, settings, seed)
    return {
        **result,
        "level": settings.level,
        "run_a": str(a.path.resolve()),
        "run_b": str(b.path.resolve()),
    }


def verdict(result: dict[str, Any], level: float) -> str:
    """One sentence: which run is better on the metric, or that they are not
    distinguishable at the interval's level."""
    difference, p_value = result["difference"], result["p_value"]
    metric = result["metric"]
    if difference is None:
        return f"{metric} is undefined on this test set: no comparison"
    shown = f"B - A = {difference:+.4f}"
    if result["ci"] is not None:
        low, high = result["ci"]
        shown += f" [{low:+.4f}, {high:+.4f}]"
    if p_value is None:
        return f"{shown}; no p-value (evaluate.bootstrap.resamples=0)"
    if p_value >= 1 - level:
        return f"{shown}, p = {p_value:.3g}: not distinguishable at {level:.0%}"
    better = "B" if (difference < 0) == (metric in LOWER_IS_BETTER) else "A"
    return f"{shown}, p = {p_value:.3g}: {better} is better on {metric} at {level:.0%}"


def versus_best(
    runs: list[RunFolder], scores: list[dict[str, Any] | None], metric: str
) -> list[float | None]:
    """For each run, the p-value of its ``metric`` against the best run's (``scores``:
    their metrics.json, None for a failed run): 1 for the best itself, None where there
    is nothing to test (no scores, another test set or classification)."""
    from omegaconf import OmegaConf

    from mammo_cli.config.schema import CompareSettings

    values = [None if s is None else s.get(metric) for s in scores]
    candidates = [i for i, value in enumerate(values) if value is not None]
    if not candidates:
        return [None] * len(runs)
    pick = min if metric in LOWER_IS_BETTER else max
    best = pick(candidates, key=lambda i: values[i])
    settings = OmegaConf.structured(CompareSettings(metric=metric))
    try:
        reference = runs[best].test_predictions()
        task = runs[best].task
    except MammoError:
        return [None] * len(runs)
    positive = positive_class(list(task.classes), task.positive_class)
    p_values: list[float | None] = []
    for i, run in enumerate(runs):
        if i == best:
            p_values.append(1.0)
            continue
        try:
            predictions = run.test_predictions() if values[i] is not None else None
        except MammoError:
            predictions = None
        unlike = different_test_data(runs[best], run) is not None
        if predictions is None or unlike or same_samples(reference, predictions) is not None:
            p_values.append(None)
            continue
        p_values.append(paired(reference, predictions, metric, positive, settings, 0)["p_value"])
    return p_values
