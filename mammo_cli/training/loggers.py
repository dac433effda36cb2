"""The ``logger`` group's Keras callbacks: TensorBoard, CSV, MLflow (conf/logger/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from mammo_cli.config import TrainConfig
from mammo_cli.training.tracking import MlflowRun, current_run

#: logger=tensorboard writes its event files here, inside the run folder
TENSORBOARD_DIR = "tensorboard"
#: logger=csv appends one row per epoch here (history.csv is written whole at the end)
EPOCHS_FILE = "epochs.csv"


class MlflowEpochLogger(keras.callbacks.Callback):
    """Log each epoch's metrics (``loss``, ``val_loss``, ...) to MLflow, step = epoch (1-based)."""

    def __init__(self, run: MlflowRun):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.run.log_epoch(epoch + 1, logs or {})


def build_logger_callbacks(cfg: TrainConfig, run_dir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks of ``cfg.logger`` for a fit whose run folder is ``run_dir``.

    ``logger=mlflow`` logs to the run that :func:`~mammo_cli.training.tracking.tracked_run`
    opened for ``run_dir`` (the commands open it around the run folder's work).
    """
    name = cfg.logger.name
    if name == "tensorboard":
        # Scalars only: no weight histograms, no profiling (cheap on CPU).
        return [
            keras.callbacks.TensorBoard(
                log_dir=str(run_dir / TENSORBOARD_DIR), histogram_freq=0, profile_batch=0
            )
        ]
    if name == "csv":
        return [keras.callbacks.CSVLogger(str(run_dir / EPOCHS_FILE))]
    if name == "mlflow":
        return [MlflowEpochLogger(current_run())]
    return []
