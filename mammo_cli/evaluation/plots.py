"""PNG figures of a run: confusion matrix and training curves (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from mammo_cli.evaluation.metrics import expected_calibration_error, reliability_bins  # noqa: E402
from mammo_cli.files import write_with  # noqa: E402


def _save_figure(fig: plt.Figure, path: Path, dpi: int) -> Path:
    """Lay out ``fig``, write it whole to ``path`` (temp file + rename) and close it."""
    fig.tight_layout()
    try:
        return write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    finally:
        plt.close(fig)


def save_confusion_matrix(
    matrix: list[list[int]], class_names: list[str], path: Path, title: str
) -> Path:
    """Write the confusion matrix (rows = true class, columns = predicted) as a PNG."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=class_names).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d"
    )
    ax.set_title(title)
    return _save_figure(fig, path, dpi=120)


def save_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Write train/validation accuracy and loss per epoch (study figures 3, 6, ...)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(epochs, history[metric], label=f"training {metric}")
        ax.plot(epochs, history[f"val_{metric}"], label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    return _save_figure(fig, path, dpi=100)


def save_reliability_diagram(labels: np.ndarray, probs: np.ndarray, path: Path, title: str) -> Path:
    """Write the reliability diagram: per confidence bin (top-class probability, 10 bins),
    the accuracy against the mean confidence, with the diagonal of perfect calibration
    and the ECE; below it, the number of test samples in each bin."""
    binned = reliability_bins(labels, probs)
    centres = (binned.edges[:-1] + binned.edges[1:]) / 2
    width = binned.edges[1] - binned.edges[0]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="calibrated")
    accuracy = np.nan_to_num(binned.accuracy)
    top.bar(centres, accuracy, width, edgecolor="black", alpha=0.7, label="accuracy per bin")
    top.plot(
        binned.confidence, binned.accuracy, "o", color="red", label="at the bin's mean confidence"
    )
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(f"{title} (ECE {expected_calibration_error(labels, probs):.3f})")
    bars = bottom.bar(centres, binned.counts, width, edgecolor="black", color="grey")
    bottom.bar_label(bars, fontsize=7)
    bottom.set_xlabel("confidence (probability of the predicted class)")
    bottom.set_ylabel("samples")
    bottom.set_xlim(0, 1)
    return _save_figure(fig, path, dpi=120)


def _grouped_bars(ax, groups: dict[str, dict[str, int]], title: str) -> None:
    """Bars per class, one colour per group (e.g. train/test), counts written on top."""
    names = list(next(iter(groups.values())))
    width = 0.8 / len(groups)
    positions = np.arange(len(names))
    for offset, (group, counts) in enumerate(groups.items()):
        bars = ax.bar(positions + offset * width, [counts[n] for n in names], width, label=group)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(positions + width * (len(groups) - 1) / 2, names)
    ax.set_title(title)
    ax.set_ylabel("patches")
    ax.legend()


def save_label_distribution(raw_counts: dict[str, dict[str, int]], path: Path) -> Path:
    """Study figure 1: abnormalities grouped as mass/calcification and benign/malignant."""
    groupings = {
        "mass vs calcification": {
            "mass": ("mass benign", "mass malignant"),
            "calcification": ("calcification benign", "calcification malignant"),
        },
        "benign vs malignant": {
            "benign": ("mass benign", "calcification benign"),
            "malignant": ("mass malignant", "calcification malignant"),
        },
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (title, classes) in zip(axes, groupings.items(), strict=True):
        groups = {
            split: {
                name: sum(counts[label] for label in labels) for name, labels in classes.items()
            }
            for split, counts in raw_counts.items()
        }
        _grouped_bars(ax, groups, title)
    return _save_figure(fig, path, dpi=100)


def save_split_distribution(train: dict[str, int], val: dict[str, int], path: Path) -> Path:
    """Study figure 5: the task's classes in the training and validation parts."""
    fig, ax = plt.subplots(figsize=(6, 4))
    _grouped_bars(ax, {"training": train, "validation": val}, "after the validation split")
    return _save_figure(fig, path, dpi=100)


def save_samples(
    images: np.ndarray, labels: np.ndarray, per_class: int, paired: bool, path: Path, seed: int
) -> Path:
    """A contact sheet: ``per_class`` abnormalities of each course label (1..4), each
    shown next to its baseline patch (index - 1) when the data is paired."""
    from mammo_cli.data.course import RAW_LABELS

    rng = np.random.default_rng(seed)
    width = 2 if paired else 1
    fig, axes = plt.subplots(
        4, per_class * width, figsize=(1.6 * per_class * width, 7), squeeze=False
    )
    for row, label in enumerate(range(1, 5)):
        candidates = np.flatnonzero(labels == label)
        chosen = np.sort(rng.choice(candidates, min(per_class, len(candidates)), replace=False))
        for ax in axes[row]:
            ax.axis("off")
        for column, index in enumerate(chosen):
            shown = (
                [(index - 1, "baseline"), (index, RAW_LABELS[label])]
                if paired
                else [(index, RAW_LABELS[label])]
            )
            for offset, (patch, title) in enumerate(shown):
                ax = axes[row, column * width + offset]
                ax.imshow(np.asarray(images[patch]).squeeze(), cmap="gray")
                ax.set_title(title, fontsize=7)
    return _save_figure(fig, path, dpi=90)


def save_roc_curve(
    positives: np.ndarray,
    scores: np.ndarray,
    positive_name: str,
    path: Path,
    title: str,
    operating_point: dict | None = None,
) -> Path:
    """Write the ROC curve of a binary task (``positives``: 1 for the positive class;
    ``scores``: its probabilities) with the AUC and, when given, the operating point
    chosen for a target sensitivity."""
    from sklearn.metrics import RocCurveDisplay

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    RocCurveDisplay.from_predictions(positives, scores, pos_label=1, name=positive_name, ax=ax)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    if operating_point is not None:
        ax.plot(
            1 - operating_point["specificity"],
            operating_point["sensitivity"],
            "o",
            color="red",
            label=f"threshold {operating_point['threshold']:.3f}",
        )
        ax.legend(loc="lower right")
    ax.set_title(title)
    return _save_figure(fig, path, dpi=120)


def _overlay(ax, patch: np.ndarray, heatmap: np.ndarray, title: str, fontsize: int) -> None:
    ax.imshow(np.asarray(patch).squeeze(), cmap="gray", vmin=0.0, vmax=1.0)
    ax.imshow(heatmap, cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


def _title_lines(titles: Sequence[str]) -> int:
    return max((title.count("\n") + 1 for title in titles), default=1)


def save_gradcam_overlay(
    patches: Sequence[np.ndarray], heatmaps: Sequence[np.ndarray], titles: Sequence[str], path: Path
) -> Path:
    """Patches side by side (one, or a siamese pair), each with its Grad-CAM heatmap
    (jet, 40 % opaque) on top."""
    height = 3.0 + 0.2 * _title_lines(titles)
    fig, axes = plt.subplots(1, len(patches), figsize=(3.2 * len(patches), height), squeeze=False)
    for ax, patch, heatmap, title in zip(axes.flat, patches, heatmaps, titles, strict=True):
        _overlay(ax, patch, heatmap, title, fontsize=8)
    return _save_figure(fig, path, dpi=100)


def save_contact_sheet(
    patches: np.ndarray, heatmaps: np.ndarray, titles: list[str], path: Path, title: str
) -> Path:
    """Grad-CAM overlays of several patches on one sheet, four a row (siamese pairs: the
    abnormality and baseline tiles next to each other)."""
    columns = min(4, len(patches))
    rows = -(-len(patches) // columns)
    row_height = 2.2 + 0.2 * _title_lines(titles)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.4 * columns, row_height * rows + 0.4), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, patch, heatmap, text in zip(axes.flat, patches, heatmaps, titles, strict=False):
        _overlay(ax, patch, heatmap, text, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save_figure(fig, path, dpi=90)
