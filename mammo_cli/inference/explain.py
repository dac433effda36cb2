"""Grad-CAM explanations of a saved run's predictions (``mammo explain``).

Overlays of the predicted class's heatmap on each patch (``gradcam/<id>.png``; a siamese
pair's abnormality and baseline side by side) and ``explanations.csv``; without an
input, the run's test set and a contact sheet of its most confident right and wrong
predictions.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from mammo_cli.data.course import to_model_input
from mammo_cli.data.tasks import ModelInput, TaskView, take
from mammo_cli.evaluation.gradcam import build_gradcam
from mammo_cli.evaluation.metrics import to_distribution
from mammo_cli.evaluation.plots import save_contact_sheet, save_gradcam_overlay
from mammo_cli.inference.inputs import Item, iter_batches, stack
from mammo_cli.models.siamese import PAIR_INPUTS
from mammo_cli.runs.predict import predict

EXPLANATIONS_FILE = "explanations.csv"
OVERLAY_DIR = "gradcam"
CONTACT_SHEET = "contact_sheet.png"


def _overlay_name(item_id: str) -> str:
    return re.sub(r"[^\w.-]", "_", item_id) + ".png"


def _parts(inputs: ModelInput | tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Patches or heatmaps per model input: one for single patches, two for pairs."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _panels(
    inputs: ModelInput, heatmaps: np.ndarray | tuple[np.ndarray, ...], k: int, title: str
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Sample ``k``'s patches, heatmaps and titles: one panel, or (abnormality, baseline)."""
    patches, maps = _parts(inputs), _parts(heatmaps)
    titles = [title] if len(patches) == 1 else [f"{title}\n{name}" for name in PAIR_INPUTS]
    return [p[k] for p in patches], [m[k] for m in maps], titles


def explain_items(
    model: keras.Model,
    class_names: list[str],
    items: Sequence[Item],
    batch_size: int,
    out: Path,
    progress: bool = True,
) -> str:
    """Grad-CAM overlay PNGs (``gradcam/<id>.png``; a siamese pair's abnormality and
    baseline side by side) of the predicted class of each item; returns
    ``explanations.csv`` (id, predicted, probability, overlay, error)."""
    cam = build_gradcam(model)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "predicted", "probability", "overlay", "error"])
    rows: dict[str, list[str]] = {}
    for batch in iter_batches(items, batch_size, progress, "explaining"):
        for item_id, error in batch.errors:
            rows[item_id] = [item_id, "", "", "", error]
        if not batch.items:
            continue
        inputs = stack(batch.samples)
        heatmaps, probs = cam.heatmaps(inputs)
        for k, (item, row) in enumerate(zip(batch.items, to_distribution(probs), strict=True)):
            name = class_names[int(np.argmax(row))]
            overlay = Path(OVERLAY_DIR) / _overlay_name(item.id)
            title = f"{item.id}: {name} {row.max():.2f}"
            save_gradcam_overlay(*_panels(inputs, heatmaps, k, title), out / overlay)
            rows[item.id] = [item.id, name, repr(float(row.max())), str(overlay), ""]
    for item in items:
        writer.writerow(rows[item.id])
    return buffer.getvalue()


def most_confident(correct: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` samples: the most confident wrong predictions (half, rounded
    up, or more where too few are right), then the most confident right ones."""
    order = np.argsort(-confidence, kind="stable")
    wrong, right = order[~correct[order]], order[correct[order]]
    wrong = wrong[: max((n + 1) // 2, n - len(right))]
    return np.concatenate([wrong, right[: n - len(wrong)]])


def explain_test_set(model: keras.Model, test: TaskView, n: int, batch_size: int, out: Path) -> str:
    """Grad-CAM of the ``n`` most confident right and wrong predictions on a test set:
    one overlay each, ``contact_sheet.png`` (siamese: each pair's abnormality next to its
    baseline); returns ``explanations.csv``."""
    cam = build_gradcam(model)
    probs = to_distribution(predict(model, test.stored_input(), batch_size))
    predicted = probs.argmax(axis=1)
    chosen = most_confident(predicted == test.labels, probs.max(axis=1), n)
    shown = tuple(to_model_input(part) for part in _parts(take(test.stored_input(), chosen)))
    shown = shown if len(shown) > 1 else shown[0]
    batches = [
        _parts(cam.heatmaps(take(shown, np.arange(start, min(start + batch_size, len(chosen)))))[0])
        for start in range(0, len(chosen), batch_size)
    ]
    heatmaps = tuple(np.concatenate(part) for part in zip(*batches, strict=True))
    names = test.class_names
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["test_index", "true", "predicted", "probability", "correct", "overlay"])
    sheet: tuple[list[np.ndarray], list[np.ndarray], list[str]] = ([], [], [])
    for k, index in enumerate(chosen):
        true, pred = names[test.labels[index]], names[predicted[index]]
        title = f"#{index} true {true}\npred {pred} {probs[index].max():.2f}"
        overlay = Path(OVERLAY_DIR) / f"test_{index:05d}.png"
        panels = _panels(shown, heatmaps, k, title)
        save_gradcam_overlay(*panels, out / overlay)
        for tiles, panel in zip(sheet, panels, strict=True):
            tiles.extend(panel)
        writer.writerow(
            [index, true, pred, repr(float(probs[index].max())), true == pred, str(overlay)]
        )
    save_contact_sheet(
        np.stack(sheet[0]),
        np.stack(sheet[1]),
        sheet[2],
        out / CONTACT_SHEET,
        f"Grad-CAM ({cam.layer}): most confident wrong, then right predictions",
    )
    return buffer.getvalue()
