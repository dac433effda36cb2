"""``mammo train``: one training run, evaluated on the test set.

``mammo train resume=<run dir>`` continues an interrupted run in its own folder, with
the config it saved, from the checkpoint of its last finished epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mammo_cli.data.dataset import load_task_data
from mammo_cli.tf_setup import import_tensorflow_quietly

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train, evaluate and fill ``run_dir``; return its metrics.json."""
    data = load_task_data(cfg.data, cfg.task)  # bad data fails here, before TensorFlow loads
    import_tensorflow_quietly()
    from mammo_cli.runs.pipeline import train_and_evaluate

    metrics = train_and_evaluate(cfg, run_dir, data, resume=cfg.resume is not None)
    log.info("validation metrics: %s", metrics["validation"])
    return metrics


def show(cfg: DictConfig, metrics: dict[str, Any], run_dir: Path) -> None:
    """Print the test metrics and the run folder."""
    from mammo_cli.evaluation.reports import print_metrics

    print_metrics(metrics, title=f"mammo train: task {metrics['task']} (test set)")
    print(f"run folder: {run_dir}")


def objective(metrics: dict[str, Any]) -> float:
    """The validation AUC (what a sweeper may optimise: tuning on the test set would
    leak it)."""
    return float(metrics["validation"]["auc"] or 0.0)
