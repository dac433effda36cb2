"""Tables for people: rich tables printed at the end of a command."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

#: the headline scores of a run, in the order tables show them
SCORES = ("accuracy", "loss", "auc", "f1", "f1_macro")


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """One run's test metrics, per-class precision/recall and confusion matrix."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in SCORES:
        table.add_row(key, f"{metrics[key]:.4f}")
    for name in metrics["class_names"]:
        table.add_row(
            f"precision / recall ({name})",
            f"{metrics['precision'][name]:.4f} / {metrics['recall'][name]:.4f}",
        )
    matrix = metrics["confusion_matrix"]
    table.add_row(
        "confusion matrix (rows = true)",
        "\n".join(" ".join(f"{v:>4}" for v in row) for row in matrix),
    )
    if metrics.get("epochs_run") is not None:
        table.add_row("epochs run", str(metrics["epochs_run"]))
    table.add_row("wall time (s)", f"{metrics['wall_time_s']:.1f}")
    return table


def print_metrics(metrics: dict[str, Any], title: str, console: Console | None = None) -> None:
    """Print :func:`metrics_table` to the terminal."""
    (console or Console()).print(metrics_table(metrics, title))
