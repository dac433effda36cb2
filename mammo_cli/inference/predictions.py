"""``mammo predict``'s output: class probabilities per input sample and ``predictions.csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from mammo_cli.evaluation.metrics import to_distribution
from mammo_cli.inference.inputs import Item, iter_batches, stack
from mammo_cli.runs.predict import predict

PREDICTIONS_FILE = "predictions.csv"


@dataclass(frozen=True)
class Prediction:
    """One predicted sample: class probabilities (rows sum to 1), or the error."""

    id: str
    probs: np.ndarray | None
    error: str | None = None


def predict_items(
    model: keras.Model, items: Sequence[Item], batch_size: int, progress: bool = True
) -> list[Prediction]:
    """Predict every item in input order; undecodable ones come back with their error."""
    by_id: dict[str, Prediction] = {}
    for batch in iter_batches(items, batch_size, progress):
        for item_id, error in batch.errors:
            by_id[item_id] = Prediction(item_id, None, error)
        if batch.items:
            probs = to_distribution(predict(model, stack(batch.samples), batch_size))
            for item, row in zip(batch.items, probs, strict=True):
                by_id[item.id] = Prediction(item.id, row)
    return [by_id[item.id] for item in items]


def decide(probs: np.ndarray, positive_class: int | None, threshold: float) -> int:
    """The predicted class: positive iff its probability >= ``threshold`` (binary), else arg-max."""
    if positive_class is None:
        return int(np.argmax(probs))
    return positive_class if probs[positive_class] >= threshold else 1 - positive_class


def predictions_csv(
    predictions: Sequence[Prediction],
    class_names: list[str],
    positive_class: int | None,
    threshold: float,
) -> str:
    """``id, predicted, prob_<class>..., error``: one row per input sample."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "predicted", *(f"prob_{name}" for name in class_names), "error"])
    for p in predictions:
        if p.probs is None:
            writer.writerow([p.id, "", *([""] * len(class_names)), p.error])
        else:
            predicted = class_names[decide(p.probs, positive_class, threshold)]
            writer.writerow([p.id, predicted, *(repr(float(v)) for v in p.probs), ""])
    return buffer.getvalue()


def predicted_counts(
    predictions: Sequence[Prediction],
    class_names: list[str],
    positive_class: int | None,
    threshold: float,
) -> dict[str, int]:
    """How many samples each class was predicted for, plus ``errors``."""
    counts = dict.fromkeys(class_names, 0)
    counts["errors"] = 0
    for p in predictions:
        key = (
            "errors" if p.probs is None else class_names[decide(p.probs, positive_class, threshold)]
        )
        counts[key] += 1
    return counts
