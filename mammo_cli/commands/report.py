"""``mammo report <folder>``: one comparison table of every run under a folder.

Runs (training runs, ensembles, baselines) are found recursively by their
``metrics.json`` (failed runs by ``status.json``); the overrides typed for each come from
the nearest ``.hydra/overrides.yaml`` at or above the run folder, and only the keys whose
values differ between runs become columns. A run whose files are damaged is listed as
"unreadable", with the reason under the table. The table is printed and written as
``report.md`` and ``report.csv`` into the folder.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from mammo_cli.errors import MammoError
from mammo_cli.evaluation.reports import RunRow, comparison_csv, comparison_table, print_table
from mammo_cli.files import write_text
from mammo_cli.runs.compare import provenance_notes, versus_best
from mammo_cli.runs.folder import METRICS_FILE, STATUS_FILE, RunFolder
from mammo_cli.runs.report_page import HTML_FILE, write_html

#: the kinds of run folder a report compares
REPORTED = ("train", "ensemble", "baseline")

USAGE = (
    "usage: mammo report <folder> [metric=auc]   (a multirun folder, or any folder of run "
    "folders; metric: the score each run is tested on against the best run)"
)
#: metrics a report can test runs on (the p_vs_best column)
METRICS = ("accuracy", "auc", "f1", "f1_macro", "brier")
MARKDOWN_FILE = "report.md"
CSV_FILE = "report.csv"


def _natural_key(path: Path) -> list[tuple[int, int | str]]:
    """Sort ``2`` before ``10`` in every path component (multirun job numbers)."""
    return [
        (0, int(piece)) if piece.isdigit() else (1, piece)
        for part in path.parts
        for piece in re.split(r"(\d+)", part)
        if piece
    ]


def find_run_folders(folder: Path) -> list[Path]:
    """Run folders under ``folder`` (itself included) that finished or failed; a folder
    whose provenance.json is damaged is kept (its row says so)."""
    found = {path.parent for name in (METRICS_FILE, STATUS_FILE) for path in folder.rglob(name)}
    found = {
        run
        for run in found
        if ".hydra" not in run.relative_to(folder).parts and _reported(RunFolder(run))
    }
    return sorted(found, key=lambda run: _natural_key(run.relative_to(folder)))


def _reported(run: RunFolder) -> bool:
    """Whether the report lists ``run``: a kind it compares, or one it cannot tell."""
    try:
        return run.command in REPORTED
    except MammoError:  # a damaged provenance.json: listed as unreadable
        return True


def parse_override(text: str) -> tuple[str, str]:
    """``model.hidden_units=64`` -> (``model.hidden_units``, ``64``); quotes dropped."""
    key, _, value = text.partition("=")
    key = key.lstrip("+")
    if key.startswith("~"):
        return key[1:], "(deleted)"
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def read_overrides(run: Path, folder: Path) -> dict[str, str]:
    """The overrides of the nearest ``.hydra/overrides.yaml`` from ``run`` up to ``folder``
    (a MammoError if that file is damaged)."""
    for candidate in (run, *run.parents):
        path = candidate / ".hydra" / "overrides.yaml"
        if path.is_file():
            try:
                overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            except (OSError, ValueError, yaml.YAMLError) as exc:  # unreadable, not UTF-8, YAML
                raise MammoError(f"{path} is damaged ({_reason(exc)})") from exc
            if not isinstance(overrides, list):
                raise MammoError(
                    f"{path} is damaged (expected a list of overrides, "
                    f"found {type(overrides).__name__})"
                )
            return dict(parse_override(str(item)) for item in overrides)
        if candidate == folder:
            break
    return {}


def _reason(exc: Exception) -> str:
    """One line saying what is wrong with a file (a YAML error: the problem and where)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"not valid YAML: {exc.problem}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


def read_run(run: Path, folder: Path) -> RunRow:
    """One run folder as a comparison row; a damaged one (metrics.json, status.json,
    provenance.json or its overrides.yaml) as an "unreadable" row saying why."""
    name = run.relative_to(folder).as_posix()
    record = RunFolder(run)
    overrides: dict[str, str] = {}
    kind = "train"
    try:
        overrides = read_overrides(run, folder)
        kind = record.command or kind
        if record.is_finished:
            return RunRow(name, overrides, record.metrics(), kind=kind)
        status = record.status() or {}
        return RunRow(name, overrides, None, str(status.get("status", "failed")), kind=kind)
    except MammoError as exc:
        return RunRow(name, overrides, None, "unreadable", kind=kind, note=str(exc))


def main(args: Sequence[str]) -> None:
    """Parse ``<folder>``, build the comparison, print it and write report.md/report.csv."""
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return
    folders = [arg for arg in args if "=" not in arg]
    options = dict(arg.split("=", 1) for arg in args if "=" in arg)
    if len(folders) != 1 or set(options) - {"metric"}:
        raise MammoError(f"expected one folder ({USAGE}); got {' '.join(args) or 'nothing'}")
    metric = options.get("metric", "auc")
    if metric not in METRICS:
        raise MammoError(f"metric={metric}; expected one of {', '.join(METRICS)}")
    folder = Path(folders[0]).expanduser()
    if not folder.is_dir():
        raise MammoError(f"{folder} is not a folder ({USAGE})")
    runs = find_run_folders(folder)
    if not runs:
        raise MammoError(
            f"no runs under {folder} (expected run folders with a metrics.json, "
            "e.g. a `mammo train -m ...` output folder)"
        )
    rows = [read_run(run, folder) for run in runs]
    p_values = versus_best([RunFolder(run) for run in runs], [row.metrics for row in rows], metric)
    rows = [dataclasses.replace(row, p_vs_best=p) for row, p in zip(rows, p_values, strict=True)]
    table = comparison_table(rows, title=f"mammo report: {folder}", metric=metric)
    folders = {row.run: RunFolder(run) for row, run in zip(rows, runs, strict=True)}
    table.notes.extend(f"provenance: {note}" for note in provenance_notes(folders))
    try:
        write_text(folder / MARKDOWN_FILE, table.to_markdown())
        write_text(folder / CSV_FILE, comparison_csv(rows))
        write_html(folder, table.title, [table], folders)
    except OSError as exc:
        raise MammoError(f"cannot write the report into {folder} ({exc.strerror or exc})") from exc
    print_table(table)
    print(f"wrote {folder / MARKDOWN_FILE}, {folder / CSV_FILE} and {folder / HTML_FILE}")
