"""report.html: one self-contained page with a report's tables, runs, plots and provenance.

The page needs nothing but itself: plots are embedded as ``data:image/png;base64`` URIs,
the CSS is inline, there is no script and no reference to another file or the network.
Everything that comes from a user or a run (run names, cells, warnings) is escaped by
Jinja2's autoescaping.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from mammo_cli.evaluation.reports import SCORE_TITLES, SCORES, TextTable, format_estimate
from mammo_cli.files import write_text
from mammo_cli.provenance import differences, key_facts

TEMPLATE = "report.html.j2"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: metrics.json scores shown for a run besides :data:`SCORES`, with their titles
EXTRA_SCORES = {"brier": "Brier score", "ece": "ECE"}


@dataclass(frozen=True)
class RunSection:
    """One run's part of the page."""

    name: str
    #: title -> formatted value, in display order (see :func:`metric_cells`)
    metrics: Mapping[str, str] = field(default_factory=dict)
    #: sentences shown as the run's warnings
    warnings: Sequence[str] = ()
    #: caption -> PNG file; files that do not exist are skipped
    images: Mapping[str, Path] = field(default_factory=dict)
    #: the run's provenance.json, None when it has none
    provenance: Mapping[str, Any] | None = None


def metric_cells(metrics: Mapping[str, Any]) -> dict[str, str]:
    """A metrics.json's headline scores with their intervals (``ci``), as display cells."""
    intervals = metrics.get("ci") or {}
    titles = {**{key: SCORE_TITLES[key] for key in SCORES}, **EXTRA_SCORES}
    cells = {
        title: format_estimate(metrics[key], intervals.get(key))
        for key, title in titles.items()
        if key in metrics
    }
    if intervals and "ci_level" in metrics:
        cells["Intervals"] = f"{metrics['ci_level']:.0%} {metrics.get('ci_method', '')}".strip()
    if metrics.get("epochs_run") is not None:
        cells["Epochs run"] = str(metrics["epochs_run"])
    return cells


def png_data_uri(path: Path) -> str:
    """The PNG at ``path`` as a ``data:image/png;base64,...`` URI."""
    data = Path(path).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mammo_cli.evaluation", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(TEMPLATE)


def _table_view(table: TextTable) -> dict[str, Any]:
    right = [i < len(table.align) and table.align[i] == "right" for i in range(len(table.headers))]
    return {"table": table, "right": right}


def _run_view(run: RunSection) -> dict[str, Any]:
    facts = key_facts(run.provenance) if run.provenance is not None else {}
    return {
        "name": run.name,
        "metrics": run.metrics,
        "warnings": run.warnings,
        "facts": {key.replace("_", " "): value for key, value in facts.items() if value},
        "images": [
            (caption, png_data_uri(path))
            for caption, path in run.images.items()
            if Path(path).is_file()
        ],
    }


def render_report(title: str, tables: Sequence[TextTable], runs: Sequence[RunSection]) -> str:
    """The page: ``title``, each table with its notes, the provenance differences between
    ``runs`` (data files, versions, device), then one section per run."""
    recorded = {run.name: run.provenance for run in runs if run.provenance is not None}
    return _template().render(
        title=title,
        tables=[_table_view(table) for table in tables],
        runs=[_run_view(run) for run in runs],
        differences=differences(recorded),
        recorded=len(recorded),
        unrecorded=[run.name for run in runs if run.provenance is None],
    )


def write_report(
    path: Path, title: str, tables: Sequence[TextTable], runs: Sequence[RunSection]
) -> Path:
    """Write :func:`render_report`'s page to ``path`` whole."""
    return write_text(path, render_report(title, tables, runs))
