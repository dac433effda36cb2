"""``mammo holdout``: k trainings of one config, each on its own train/validation split
(:mod:`mammo_cli.runs.holdout`).

``mammo holdout resume=<holdout dir>`` continues an interrupted holdout with the config
it saved: finished splits are kept, the first unfinished one resumes from its checkpoint
(or starts again), and the rest run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mammo_cli.data.dataset import load_task_data
from mammo_cli.errors import PartialFailure
from mammo_cli.tf_setup import import_tensorflow_quietly

#: the file whose numbers an MLflow run of the holdout folder records
SUMMARY_FILE = "holdout.json"


def run(cfg: DictConfig, root: Path) -> dict[str, Any]:
    """Run the k splits into ``root``; return holdout.json.

    A split that fails is recorded in ``holdout.json`` and the others still run; then a
    :class:`~mammo_cli.errors.PartialFailure` carries that result. With
    ``logger=mlflow`` the holdout is a parent MLflow run and each split a run nested in it.
    """
    data = load_task_data(cfg.data, cfg.task)  # loaded once, shared by every split
    import_tensorflow_quietly()
    from mammo_cli.files import write_json, write_text
    from mammo_cli.runs.folder import RunFolder
    from mammo_cli.runs.holdout import (
        RESULT_FILE,
        TABLE_FILE,
        holdout_report,
        pooled_scores,
        summarize,
        train_splits,
    )
    from mammo_cli.runs.report_page import write_html

    runs, failed = train_splits(cfg, data, root, resume=cfg.resume is not None)
    result = summarize(cfg, runs, failed, pooled_scores(cfg, root, runs) if runs else None)
    table = holdout_report(cfg, result)
    write_text(root / TABLE_FILE, table.to_markdown())
    splits = {f"split {run['split']}": RunFolder(root / run["run_dir"]) for run in runs}
    write_html(root, table.title, [table], splits)
    write_json(root / RESULT_FILE, result)
    if failed:
        first = failed[0]
        raise PartialFailure(
            f"{len(failed)} of {cfg.holdout.k} holdout splits failed (split {first['split']}: "
            f"{first['error']}); details in {root / RESULT_FILE}",
            result,
        )
    return result


def show(cfg: DictConfig, result: dict[str, Any], root: Path) -> None:
    """Print the study-layout table and the run folder."""
    from mammo_cli.evaluation.reports import print_table
    from mammo_cli.runs.holdout import holdout_report

    print_table(holdout_report(cfg, result))
    print(f"run folder: {root}")


def objective(result: dict[str, Any]) -> float:
    """The mean validation AUC over the splits (for sweepers)."""
    return float(result["validation_mean"]["auc"] or 0.0)
