"""``mammo baseline [task=...] [data.dir=...] [baseline.model=logistic|random_forest]``:
a scikit-learn baseline of a task (:mod:`mammo_cli.runs.baseline`), with no TensorFlow.

It composes like ``mammo train`` (the same overrides give the same task view and
train/validation split) and writes an ordinary scored run folder: ``metrics.json``,
``test_predictions.csv``, the plots, ``config.yaml``. The fitted model is not saved: a
scikit-learn model loads only by unpickling, which can run code, and the baseline refits
to the same numbers from the same config and seed in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mammo_cli.data.dataset import load_task_data
from mammo_cli.evaluation.reports import print_metrics
from mammo_cli.runs.baseline import fit_and_score


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit and score the baseline into ``run_dir``; return its metrics.json."""
    data = load_task_data(cfg.data, cfg.task)
    return fit_and_score(cfg, run_dir, data)


def show(cfg: DictConfig, metrics: dict[str, Any], run_dir: Path) -> None:
    """Print the test metrics, that no model was saved, and the run folder."""
    print_metrics(
        metrics, title=f"mammo baseline: task {metrics['task']}, {metrics['baseline_model']}"
    )
    print("model: not saved (refit it with the same overrides; same seed, same numbers)")
    print(f"run folder: {run_dir}")


def objective(metrics: dict[str, Any]) -> float:
    """The validation AUC (what a sweeper may optimise, as for ``mammo train``)."""
    return float(metrics["validation"]["auc"] or 0.0)
