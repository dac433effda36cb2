"""Predicting new patches with a saved run: inputs, batches, ``predictions.csv``.

An input is one of

* a course-format tensor ``.npy`` without labels (e.g. ``private_test_tensor.npy``),
  validated like the course tensors; for a siamese run its patches are read as the
  course's interleaved pairs (baseline at 2i, abnormality at 2i+1), one prediction a pair;
* a PNG/TIFF/DICOM file, or a folder of them (not recursive): each file one patch,
  grayscale, 8/16-bit scaled by its dtype's maximum, resized to 150x150 (nearest) when
  needed; with ``roi=[x0,y0,x1,y1]`` the box is cut from each image first (e.g. a full
  mammogram) before the resize.

Files are decoded one batch at a time (bounded memory). A file that cannot be decoded
becomes a row with an ``error`` and no prediction; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mammo_cli.config import TrainConfig
from mammo_cli.data.cbis_ddsm import read_pixels, resize
from mammo_cli.data.course import IMAGE_SIZE, load_tensor, to_model_input
from mammo_cli.data.dataset import load_task_data
from mammo_cli.data.tasks import ModelInput, take
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.gradcam import build_gradcam
from mammo_cli.evaluation.plots import save_contact_sheet, save_gradcam_overlay
from mammo_cli.models.siamese import PAIR_INPUTS
from mammo_cli.runs import (
    ENSEMBLE_MODEL_FILE,
    MODEL_FILE,
    check_model_fits_task,
    is_ensemble_run,
    load_model,
    load_run_config,
)

#: file suffixes read as images (Pillow) and as DICOM (pydicom)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
PREDICTIONS_FILE = "predictions.csv"

#: one decoded sample: a (150, 150, 1) patch, or an (abnormality, baseline) pair of them
Sample = np.ndarray | tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class SavedRun:
    """A run folder's model with the task it was trained for."""

    folder: Path
    cfg: TrainConfig
    model: keras.Model
    class_names: list[str]

    @property
    def pairs(self) -> bool:
        """Whether the model takes (abnormality, baseline) pairs (siamese)."""
        return bool(self.cfg.task.pairs)

    @property
    def positive_class(self) -> int | None:
        """The task's positive class index for binary tasks, None otherwise."""
        if len(self.class_names) != 2:
            return None
        return 1 if self.cfg.task.positive_class is None else int(self.cfg.task.positive_class)


def open_run(run: Path) -> SavedRun:
    """Load the model and task of a ``mammo train`` or ``mammo ensemble`` folder."""
    if not run.is_dir():
        raise MammoError(f"run={run} is not a folder (expected a mammo run folder)")
    cfg = load_run_config(run)
    model = load_model(run / (ENSEMBLE_MODEL_FILE if is_ensemble_run(run) else MODEL_FILE))
    check_model_fits_task(model, cfg)
    class_names = list(cfg.task.classes)
    if model.output_shape[-1] != len(class_names):
        raise MammoError(
            f"the model of {run} has {model.output_shape[-1]} outputs but task "
            f"{cfg.task.name} has {len(class_names)} classes"
        )
    return SavedRun(folder=run, cfg=cfg, model=model, class_names=class_names)


@dataclass(frozen=True)
class Item:
    """One sample to predict: its id (index or file name) and how to decode it."""

    id: str
    read: Callable[[], Sample]


def _to_patch(pixels: np.ndarray, roi: Sequence[int] | None, name: str) -> np.ndarray:
    """Cut ``roi`` (x0, y0, x1, y1), resize to 150x150 (nearest), scale to [0, 1]."""
    if roi is not None:
        x0, y0, x1, y1 = roi
        if not (0 <= x0 < x1 <= pixels.shape[1] and 0 <= y0 < y1 <= pixels.shape[0]):
            raise ValueError(
                f"roi={list(roi)} is outside {name} ({pixels.shape[1]}x{pixels.shape[0]} pixels)"
            )
        pixels = pixels[y0:y1, x0:x1]
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE):
        pixels = resize(pixels, IMAGE_SIZE, "nearest")
    return to_model_input(pixels[np.newaxis])[0]


def _grayscale_pixels(path: Path) -> np.ndarray:
    """Decode a PNG/TIFF with Pillow as a 2-D uint8/uint16 (or [0, 1] float) array."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            pixels = np.asarray(image)
            if pixels.min() < 0 or pixels.max() > 65535:
                raise ValueError(f"{path.name}: 32-bit pixel values outside 0..65535")
            return pixels.astype(np.uint16)
        if image.mode == "F":
            pixels = np.asarray(image, dtype=np.float32)
            if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
                raise ValueError(f"{path.name}: float pixels outside [0, 1]")
            return pixels
        return np.asarray(image.convert("L"), dtype=np.uint8)


def read_file(path: Path, roi: Sequence[int] | None = None) -> np.ndarray:
    """One image or DICOM file as a (150, 150, 1) float32 patch in [0, 1].

    Raises ValueError with the reason when the file cannot be used.
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        pixels, _ = read_pixels(str(path))  # uint16: scaled by 65535 like course tensors
    else:
        try:
            pixels = _grayscale_pixels(path)
        except (OSError, SyntaxError) as exc:  # Pillow's errors for broken/unknown files
            raise ValueError(f"cannot decode {path.name}: {exc}") from exc
    return _to_patch(pixels, roi, path.name)


def _file_items(paths: Sequence[Path], root: Path, roi: Sequence[int] | None) -> list[Item]:
    def reader(path: Path) -> Callable[[], Sample]:
        return lambda: read_file(path, roi)

    return [Item(str(path.relative_to(root)), reader(path)) for path in paths]


def _tensor_items(path: Path, pairs: bool) -> list[Item]:
    images = load_tensor(path)

    def patch(index: int) -> np.ndarray:
        return to_model_input(images[index : index + 1])[0]

    if not pairs:
        return [Item(str(i), lambda i=i: patch(i)) for i in range(len(images))]
    if len(images) % 2:
        raise MammoError(
            f"{path} holds {len(images)} patches; a siamese run reads interleaved pairs "
            "(baseline at even index 2i, abnormality at 2i+1), so an even number is expected"
        )
    return [
        Item(str(i), lambda i=i: (patch(2 * i + 1), patch(2 * i))) for i in range(len(images) // 2)
    ]


def collect_items(source: Path, pairs: bool, roi: Sequence[int] | None = None) -> list[Item]:
    """The samples of ``source``: a course tensor, an image/DICOM file, or a folder of them."""
    if not source.exists():
        raise MammoError(f"input={source} does not exist")
    if roi is not None and (len(roi) != 4 or roi[0] >= roi[2] or roi[1] >= roi[3]):
        raise MammoError(f"roi={list(roi)}; expected [x0,y0,x1,y1] with x0 < x1 and y0 < y1")
    if source.is_file() and source.suffix.lower() == ".npy":
        if roi is not None:
            raise MammoError("roi= cuts images and DICOM files; a course tensor holds patches")
        return _tensor_items(source, pairs)
    known = IMAGE_SUFFIXES + DICOM_SUFFIXES
    if pairs:
        raise MammoError(
            f"this run is a siamese model on (abnormality, baseline) pairs; give input= a "
            f"course tensor .npy with interleaved pairs (baseline 2i, abnormality 2i+1), "
            f"not {'a folder' if source.is_dir() else source.suffix or 'a file'} of single images"
        )
    if source.is_file():
        if source.suffix.lower() not in known:
            raise MammoError(
                f"input={source}: expected a .npy tensor or an image ({', '.join(known)})"
            )
        return _file_items([source], source.parent, roi)
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in known)
    if not files:
        raise MammoError(f"input={source} holds no .npy, image or DICOM file ({', '.join(known)})")
    return _file_items(files, source, roi)


@dataclass(frozen=True)
class Prediction:
    """One predicted sample: class probabilities (rows sum to 1), or the error."""

    id: str
    probs: np.ndarray | None
    error: str | None = None


def _stack(samples: list[Sample]) -> ModelInput:
    """A batch in the model's input layout: patches, or the (abnormality, baseline) tuple."""
    if isinstance(samples[0], tuple):
        return tuple(np.stack(part) for part in zip(*samples, strict=True))  # type: ignore[return-value]
    return np.stack(samples)  # type: ignore[arg-type]


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    )


def iter_batches(
    items: Sequence[Item], batch_size: int, progress: bool = True, label: str = "predicting"
) -> Iterator[tuple[list[Item], list[Sample], list[Prediction]]]:
    """Decode ``items`` a batch at a time: (decoded items, their samples, error rows)."""
    if batch_size < 1:
        raise MammoError(f"batch_size={batch_size}; expected a positive integer")
    with _progress(progress) as bar:
        task = bar.add_task(label, total=len(items))
        for start in range(0, len(items), batch_size):
            good, samples, failed = [], [], []
            for item in items[start : start + batch_size]:
                try:
                    samples.append(item.read())
                    good.append(item)
                except ValueError as exc:
                    failed.append(Prediction(item.id, None, str(exc)))
            yield good, samples, failed
            bar.advance(task, len(good) + len(failed))


def normalised(probs: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1, as the metrics score them (a no-op for softmax)."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)


def predict_items(
    model: keras.Model, items: Sequence[Item], batch_size: int, progress: bool = True
) -> list[Prediction]:
    """Predict every item in input order; undecodable ones come back with their error."""
    by_id: dict[str, Prediction] = {}
    for good, samples, failed in iter_batches(items, batch_size, progress):
        for prediction in failed:
            by_id[prediction.id] = prediction
        if good:
            probs = normalised(model.predict(_stack(samples), batch_size=batch_size, verbose=0))
            for item, row in zip(good, probs, strict=True):
                by_id[item.id] = Prediction(item.id, row)
    return [by_id[item.id] for item in items]


def decide(probs: np.ndarray, positive_class: int | None, threshold: float) -> int:
    """The predicted class: positive iff its probability >= ``threshold`` (binary), else arg-max."""
    if positive_class is None:
        return int(np.argmax(probs))
    return positive_class if probs[positive_class] >= threshold else 1 - positive_class


def check_threshold(threshold: float, positive_class: int | None) -> None:
    """Refuse a threshold outside [0, 1], or a non-default one on a multi-class task."""
    if not 0.0 <= threshold <= 1.0:
        raise MammoError(f"predict.threshold={threshold}; expected a probability in [0, 1]")
    if positive_class is None and threshold != 0.5:
        raise MammoError(
            f"predict.threshold={threshold} applies to binary tasks only; this run's task has "
            "more than two classes (the arg-max class is predicted)"
        )


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
    saved: SavedRun, items: Sequence[Item], batch_size: int, out: Path, progress: bool = True
) -> str:
    """Grad-CAM overlay PNGs (``gradcam/<id>.png``; a siamese pair's abnormality and
    baseline side by side) of the predicted class of each item; returns
    ``explanations.csv`` (id, predicted, probability, overlay, error)."""
    cam = build_gradcam(saved.model)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "predicted", "probability", "overlay", "error"])
    rows: dict[str, list[str]] = {}
    for good, samples, failed in iter_batches(items, batch_size, progress, "explaining"):
        for prediction in failed:
            rows[prediction.id] = [prediction.id, "", "", "", prediction.error or ""]
        if not good:
            continue
        batch = _stack(samples)
        heatmaps, probs = cam.heatmaps(batch)
        for k, (item, row) in enumerate(zip(good, normalised(probs), strict=True)):
            name = saved.class_names[int(np.argmax(row))]
            overlay = Path(OVERLAY_DIR) / _overlay_name(item.id)
            title = f"{item.id}: {name} {row.max():.2f}"
            save_gradcam_overlay(*_panels(batch, heatmaps, k, title), out / overlay)
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


def explain_test_set(saved: SavedRun, n: int, batch_size: int, out: Path) -> str:
    """Grad-CAM of the ``n`` most confident right and wrong predictions on the run's test
    set: one overlay each, ``contact_sheet.png`` (siamese: each pair's abnormality next
    to its baseline); returns ``explanations.csv``."""
    if n < 1:
        raise MammoError(f"n={n}; expected a positive number of patches to show")
    cam = build_gradcam(saved.model)
    test = load_task_data(saved.cfg.data, saved.cfg.task, with_train=False).test
    images = test.model_input()
    probs = normalised(saved.model.predict(images, batch_size=batch_size, verbose=0))
    predicted = probs.argmax(axis=1)
    chosen = most_confident(predicted == test.labels, probs.max(axis=1), n)
    shown = take(images, chosen)
    batches = [
        _parts(cam.heatmaps(take(shown, np.arange(start, min(start + batch_size, len(chosen)))))[0])
        for start in range(0, len(chosen), batch_size)
    ]
    heatmaps = tuple(np.concatenate(part) for part in zip(*batches, strict=True))
    names = saved.class_names
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
