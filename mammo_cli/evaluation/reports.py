"""Tables for people: rich tables printed at the end of a command, and their Markdown/CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: the headline scores of a run, in the order tables show them
SCORES = ("accuracy", "loss", "auc", "f1", "f1_macro")


#: calibration scores a run's summary shows after :data:`SCORES`
CALIBRATION = ("brier", "ece")


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """One run's test metrics with their intervals, per-class precision/recall and
    confusion matrix."""
    intervals = metrics.get("ci") or {}
    caption = None
    if intervals:
        caption = f"value (low, high): {metrics['ci_level']:.0%} {metrics['ci_method']} intervals"
    table = Table(title=escape(title), caption=caption, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (*SCORES, *CALIBRATION):
        if key in metrics:
            table.add_row(key, escape(format_estimate(metrics[key], intervals.get(key))))
    for name in metrics["class_names"]:
        table.add_row(
            escape(f"precision / recall ({name})"),
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
    """Print :func:`metrics_table` to the terminal, then the run's warnings."""
    console = console or Console()
    console.print(metrics_table(metrics, title))
    for warning in metrics.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


#: how the study's tables title the scores: columns of tables 1 and 5-8 ...
SCORE_TITLES = {
    "accuracy": "Test accuracy",
    "loss": "Test loss",
    "auc": "AUC",
    "f1": "F-score",
    "f1_macro": "F1 macro",
}
#: ... and the rows ("Measure") of the holdout tables 2-4
MEASURE_TITLES = {
    "accuracy": "accuracy",
    "loss": "loss",
    "auc": "AUC",
    "f1": "F-score",
    "f1_macro": "F1 macro",
}
#: column titles of swept overrides, in the order the study's tables put them
OVERRIDE_TITLES = {
    "task": "Task",
    "model": "Model",
    "trainer.batch_size": "Batch size",
    "model.hidden_units": "Hidden units",
    "model.mode": "Mode",
    "model.unfreeze_from": "Unfreezed block",
    "model.dropout": "Dropout",
    "class_weights": "Class weights",
    "class_weights.weights": "Weights",
}


@dataclass(frozen=True)
class TextTable:
    """A table of text cells that renders for the terminal (rich) or as Markdown."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    #: "left" or "right" per column; missing entries are "left".
    align: list[str] = field(default_factory=list)
    #: lines shown under the table (failed runs, seeds, ...).
    notes: list[str] = field(default_factory=list)

    def _align(self, index: int) -> str:
        return self.align[index] if index < len(self.align) else "left"

    def to_rich(self) -> Table:
        """The table for ``rich.console.Console.print`` (cells are text, never markup:
        ``[low, high]`` and ``members=[...]`` print as they are)."""
        caption = escape("\n".join(self.notes)) or None
        table = Table(title=escape(self.title), caption=caption, header_style="bold")
        for index, header in enumerate(self.headers):
            justify = "right" if self._align(index) == "right" else "left"
            table.add_column(escape(header), justify=justify)
        for row in self.rows:
            table.add_row(*(escape(cell) for cell in row))
        return table

    def to_markdown(self) -> str:
        """A Markdown document: the title as a heading, the table, then the notes."""

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        rule = ["---:" if self._align(i) == "right" else "---" for i in range(len(self.headers))]
        lines = [f"# {self.title}", "", line(self.headers), line(rule)]
        lines += [line(row) for row in self.rows]
        if self.notes:
            lines += ["", *self.notes]
        return "\n".join(lines) + "\n"


def print_table(table: TextTable, console: Console | None = None) -> None:
    """Print a :class:`TextTable` to the terminal."""
    (console or Console()).print(table.to_rich())


def format_score(value: float | None) -> str:
    """Two decimals, as the study's tables print them (``-`` when absent)."""
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{value:.2f}"


def format_estimate(value: float | None, interval: Sequence[float | None] | None = None) -> str:
    """``0.78 [0.63, 0.90]``: a score with its interval, or alone when there is none."""
    text = format_score(value)
    if value is None or not interval or any(bound is None for bound in interval):
        return text
    low, high = interval
    return f"{text} [{format_score(low)}, {format_score(high)}]"


def ordinal(n: int) -> str:
    """1 -> 1st, 2 -> 2nd, 3 -> 3rd, 11 -> 11th, 22 -> 22nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def score_summary(runs: Sequence[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and population standard deviation (ddof=0) of each score over ``runs``.

    A score that is missing (None: a NaN read back from strict JSON) counts as NaN.
    """
    mean, std = {}, {}
    for key in SCORES:
        values = [math.nan if run[key] is None else float(run[key]) for run in runs]
        mean[key] = math.fsum(values) / len(values)
        std[key] = math.sqrt(math.fsum((v - mean[key]) ** 2 for v in values) / len(values))
    return mean, std


def holdout_table(
    splits: Sequence[dict[str, Any] | None],
    mean: dict[str, float] | None,
    std: dict[str, float] | None,
    context: dict[str, str],
    title: str,
    notes: Sequence[str] = (),
    pooled: dict[str, Any] | None = None,
) -> TextTable:
    """Study tables 2-4: one row per measure, one column per split (1st..kth), AVG, STD,
    and with ``pooled`` (the pooled test predictions of every split) its score and interval.

    ``splits`` holds each split's metrics in order, None for a failed split (shown as
    ``failed``); ``context`` (e.g. batch size, hidden units) fills the leading columns
    of the first row, as the study's tables do.
    """
    headers = [*context, "Measure", *(ordinal(i) for i in range(1, len(splits) + 1))]
    headers += ["AVG", "STD"] + ["Pooled [CI]"] * (pooled is not None)
    rows = []
    for index, key in enumerate(SCORES):
        lead = list(context.values()) if index == 0 else [""] * len(context)
        cells = [format_score(s[key]) if s is not None else "failed" for s in splits]
        summary = [format_score(stat[key] if stat else None) for stat in (mean, std)]
        if pooled is not None:
            summary.append(format_estimate(pooled.get(key), (pooled.get("ci") or {}).get(key)))
        rows.append([*lead, MEASURE_TITLES[key], *cells, *summary])
    align = ["left"] * (len(context) + 1) + ["right"] * (len(headers) - len(context) - 1)
    return TextTable(title, headers, rows, align, list(notes))


def ensemble_table(
    rows: Sequence[dict[str, Any]], title: str, notes: Sequence[str] = ()
) -> TextTable:
    """Study tables 11-12: one row per member, then the ensemble's (each with a ``name``).

    Model | Test accuracy | AUC | F-score, plus the test loss.
    """
    keys = ("accuracy", "auc", "f1", "loss")
    headers = ["Model", *(SCORE_TITLES[key] for key in keys)]
    body = [[row["name"], *(format_score(row[key]) for key in keys)] for row in rows]
    return TextTable(title, headers, body, ["left"] + ["right"] * len(keys), list(notes))


@dataclass(frozen=True)
class RunRow:
    """One run of a comparison: its folder, the overrides typed for it, its scores."""

    #: the run folder, relative to the compared folder
    run: str
    #: override key -> value as typed (``model.hidden_units`` -> ``64``)
    overrides: dict[str, str]
    #: the run's metrics.json, or None when the run failed
    metrics: dict[str, Any] | None
    #: ok | failed | interrupted | unreadable
    status: str = "ok"
    #: the command that made the run: train | ensemble | baseline
    kind: str = "train"
    #: why the row has no scores, when that needs saying (a damaged file)
    note: str = ""
    #: the p-value of the paired test of this run against the best run of the table
    p_vs_best: float | None = None


def varying_keys(rows: Sequence[RunRow]) -> list[str]:
    """Override keys whose value differs between rows: the study's order, then as typed."""
    seen: list[str] = []
    for row in rows:
        seen += [key for key in row.overrides if key not in seen]
    varying = [key for key in seen if len({row.overrides.get(key) for row in rows}) > 1]
    known = [key for key in OVERRIDE_TITLES if key in varying]
    return known + [key for key in varying if key not in known]


def comparison_table(rows: Sequence[RunRow], title: str, metric: str = "auc") -> TextTable:
    """One row per run: its kind when runs of several kinds are compared (training runs,
    ensembles, baselines), the overrides that differ between runs, the test scores with
    their intervals, the p-value of its ``metric`` against the best run's, the folder.

    With ``model.hidden_units`` and ``trainer.batch_size`` swept this is study table 1
    (Batch size | Hidden units | Test accuracy | Test loss | AUC | F-score).
    """
    keys = varying_keys(rows)
    kinds = len({row.kind for row in rows}) > 1
    headers = ["Kind"] * kinds + [OVERRIDE_TITLES.get(key, key) for key in keys]
    tested = any(row.p_vs_best is not None for row in rows)
    headers += [SCORE_TITLES[key] for key in SCORES] + ["p vs best"] * tested + ["Run"]
    body = []
    for row in rows:
        cells = [row.kind] * kinds + [row.overrides.get(key, "-") for key in keys]
        if row.metrics is None:
            cells += [row.status] * len(SCORES)
        else:
            intervals = row.metrics.get("ci") or {}
            cells += [format_estimate(row.metrics.get(key), intervals.get(key)) for key in SCORES]
        if tested:
            cells.append("-" if row.p_vs_best is None else f"{row.p_vs_best:.2g}")
        body.append([*cells, row.run])
    align = ["left"] * (len(keys) + kinds) + ["right"] * (len(SCORES) + tested) + ["left"]
    failed = [row.run for row in rows if row.metrics is None]
    notes = [f"{len(failed)} of {len(rows)} runs failed: {', '.join(failed)}"] if failed else []
    if any(row.metrics and row.metrics.get("ci") for row in rows):
        notes.append("value [low, high]: each run's bootstrap interval (metrics.json ci_method)")
    if tested:
        notes.append(
            f"p vs best: paired test of each run's {metric} against the run with the best "
            f"{metric}, on the same test samples (1 for the best itself)"
        )
    notes += [f"{row.run}: {row.note}" for row in rows if row.note]
    return TextTable(title, headers, body, align, notes)


#: the scores whose intervals report.csv lists (<metric>_ci_low, <metric>_ci_high)
INTERVAL_COLUMNS = ("accuracy", "auc", "f1", "f1_macro", "brier")


def comparison_csv(rows: Sequence[RunRow]) -> str:
    """The comparison as CSV: run, kind, the differing override keys, full-precision
    scores, their intervals, the p-value against the best run, status."""
    keys = varying_keys(rows)
    bounds = [f"{key}_ci_{side}" for key in INTERVAL_COLUMNS for side in ("low", "high")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", "kind", *keys, *SCORES, "brier", *bounds, "p_vs_best", "status"])
    for row in rows:
        metrics = row.metrics or {}
        intervals = metrics.get("ci") or {}
        swept = [row.overrides.get(key, "") for key in keys]
        scores = [metrics.get(key, "") for key in (*SCORES, "brier")]
        limits = [
            "" if intervals.get(key) is None else intervals[key][side]
            for key in INTERVAL_COLUMNS
            for side in (0, 1)
        ]
        p_value = "" if row.p_vs_best is None else row.p_vs_best
        writer.writerow([row.run, row.kind, *swept, *scores, *limits, p_value, row.status])
    return buffer.getvalue()
