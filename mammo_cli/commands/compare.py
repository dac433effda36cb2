"""``mammo compare <run A> <run B> [compare.metric=auc]``: is B better than A on the same
test samples? (:mod:`mammo_cli.runs.compare`)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mammo_cli.files import write_json
from mammo_cli.runs.compare import compare_runs, verdict
from mammo_cli.runs.folder import open_run

RESULT_FILE = "compare.json"
#: the file whose numbers an MLflow run of the folder would record
SUMMARY_FILE = RESULT_FILE


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Compare the two runs into ``run_dir``'s compare.json; return its payload."""
    a, b = (open_run(cfg[key], argument=key, model=False) for key in ("a", "b"))
    result = compare_runs(a, b, cfg.compare, cfg.seed)
    write_json(run_dir / RESULT_FILE, result)
    return result


def show(cfg: DictConfig, result: dict[str, Any], run_dir: Path) -> None:
    """Print both runs' values, the verdict and the run folder."""
    table = Table(title=f"mammo compare: {result['metric']} (n = {result['n']})")
    for column in ("run", result["metric"]):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, key in (("A", "a"), ("B", "b")):
        value = result[key]
        run = escape(f"{name}: {result[f'run_{key}']}")
        table.add_row(run, "-" if value is None else f"{value:.4f}")
    console = Console()
    console.print(table)
    console.print(escape(f"{verdict(result, cfg.compare.level)} ({result['method']})"))
    print(f"run folder: {run_dir}")


def objective(result: dict[str, Any]) -> float | None:
    """The p-value of the difference."""
    return result["p_value"]
