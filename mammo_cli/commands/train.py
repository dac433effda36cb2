"""``mammo train``: one training run, evaluated on the test set."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from mammo_cli.commands import current_run_dir, in_run_folder
from mammo_cli.data.dataset import load_task_data
from mammo_cli.tf_setup import import_tensorflow_quietly
from mammo_cli.training.tracking import check_logger

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float:
    """Hydra task function; returns the validation AUC (what a sweeper may optimise:
    tuning on the test set would leak it)."""
    check_logger(cfg.logger)
    data = load_task_data(cfg.data, cfg.task)  # bad data fails here, before TensorFlow loads
    import_tensorflow_quietly()
    from mammo_cli.evaluation.reports import print_metrics
    from mammo_cli.runs import SCORES, train_and_evaluate

    metrics = in_run_folder(cfg, lambda run_dir: train_and_evaluate(cfg, run_dir, data))
    print_metrics(metrics, title=f"mammo train: task {metrics['task']} (test set)")
    log.info("test metrics: %s", {k: metrics[k] for k in SCORES})
    log.info("validation metrics: %s", metrics["validation"])
    print(f"run folder: {current_run_dir()}")
    return float(metrics["validation"]["auc"])
