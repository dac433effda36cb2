"""``report.html`` of a set of run folders: what ``mammo report``, ``mammo holdout`` and
``mammo ensemble`` write next to their tables (:mod:`mammo_cli.evaluation.html` renders it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mammo_cli.errors import MammoError
from mammo_cli.evaluation.html import RunSection, metric_cells, write_report
from mammo_cli.evaluation.reports import TextTable
from mammo_cli.runs.folder import PROVENANCE_FILE, RunFolder, read_json

HTML_FILE = "report.html"
#: the plots a run section shows, with their captions
CAPTIONS = {
    "curves": "Training curves",
    "confusion_matrix": "Confusion matrix",
    "roc_curve": "ROC curve",
    "calibration": "Calibration",
}


def run_section(name: str, run: RunFolder) -> RunSection:
    """One run's part of the page: scores with intervals, warnings, plots, provenance
    (a damaged or unfinished run shows what it has)."""
    try:
        metrics = run.metrics() if run.is_finished else {}
    except MammoError:
        metrics = {}
    provenance_path = run / PROVENANCE_FILE
    try:
        provenance = read_json(provenance_path) if provenance_path.is_file() else None
    except MammoError:
        provenance = None
    plots = run.plots()
    return RunSection(
        name=name,
        metrics=metric_cells(metrics),
        warnings=list(metrics.get("warnings", [])),
        images={CAPTIONS[key]: path for key, path in plots.items()},
        provenance=provenance,
    )


def write_html(
    folder: Path, title: str, tables: Sequence[TextTable], runs: Mapping[str, RunFolder]
) -> Path:
    """Write ``folder/report.html``: ``tables``, then a section per run (name -> folder)."""
    sections = [run_section(name, run) for name, run in runs.items()]
    return write_report(folder / HTML_FILE, title, tables, sections)
