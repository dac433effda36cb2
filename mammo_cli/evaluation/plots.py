"""PNG figures of a run: confusion matrix and training curves (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from mammo_cli.io import write_with  # noqa: E402


def save_confusion_matrix(
    matrix: list[list[int]], class_names: list[str], path: Path, title: str
) -> Path:
    """Write the confusion matrix (rows = true class, columns = predicted) as a PNG."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=class_names).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d"
    )
    ax.set_title(title)
    fig.tight_layout()
    try:
        return write_with(path, lambda tmp: fig.savefig(tmp, dpi=120))
    finally:
        plt.close(fig)


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
    fig.tight_layout()
    try:
        return write_with(path, lambda tmp: fig.savefig(tmp, dpi=100))
    finally:
        plt.close(fig)
