"""``mammo train``: one training run, evaluated on the test set.

``mammo train resume=<run dir>`` continues an interrupted run in its own folder, with
the config it saved, from the checkpoint of its last finished epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from mammo_cli.commands import current_run_dir, in_run_folder, resumed_config
from mammo_cli.config import TrainConfig
from mammo_cli.data.dataset import load_task_data
from mammo_cli.errors import MammoError
from mammo_cli.tf_setup import import_tensorflow_quietly
from mammo_cli.training.tracking import check_logger

log = logging.getLogger(__name__)


def check_resumable(run_dir: Path) -> None:
    """Refuse to resume a finished run, or one that has no checkpoint to resume from."""
    from mammo_cli.runs import METRICS_FILE
    from mammo_cli.training.checkpoint import CHECKPOINT_DIR, has_checkpoint

    if (run_dir / METRICS_FILE).is_file():
        raise MammoError(f"resume={run_dir}: that run has finished (it has {METRICS_FILE})")
    if not has_checkpoint(run_dir):
        raise MammoError(
            f"resume={run_dir}: no {CHECKPOINT_DIR}/ there (the run stopped before its first "
            "epoch ended); start a new run"
        )


def run(cfg: DictConfig) -> float:
    """Hydra task function; returns the validation AUC (what a sweeper may optimise:
    tuning on the test set would leak it)."""
    resume = cfg.resume is not None
    if resume:
        cfg = resumed_config(cfg, "config.yaml", TrainConfig)
    check_logger(cfg.logger)
    data = load_task_data(cfg.data, cfg.task)  # bad data fails here, before TensorFlow loads
    import_tensorflow_quietly()
    from mammo_cli.evaluation.reports import print_metrics
    from mammo_cli.runs import SCORES, train_and_evaluate
    from mammo_cli.training.checkpoint import has_checkpoint

    run_dir = current_run_dir()
    if resume:
        check_resumable(run_dir)
    try:
        metrics = in_run_folder(
            cfg, lambda folder: train_and_evaluate(cfg, folder, data, resume=resume)
        )
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: status.json says interrupted
        if not has_checkpoint(run_dir):
            raise
        raise MammoError(
            f"interrupted; its last finished epoch is saved: mammo train resume={run_dir}"
        ) from None
    print_metrics(metrics, title=f"mammo train: task {metrics['task']} (test set)")
    log.info("test metrics: %s", {k: metrics[k] for k in SCORES})
    log.info("validation metrics: %s", metrics["validation"])
    print(f"run folder: {run_dir}")
    return float(metrics["validation"]["auc"])
