"""Keras callbacks of the shared fit routine: early stopping, rich progress, epoch timing."""

from __future__ import annotations

import time

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RichProgress(keras.callbacks.Callback):
    """A rich progress bar over epochs (and batches), plus one log line per epoch."""

    def __init__(self, epochs: int, console: Console | None = None):
        super().__init__()
        self.epochs = epochs
        self.console = console or Console()
        self._progress: Progress | None = None

    def on_train_begin(self, logs=None):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._epochs_task = self._progress.add_task("epochs", total=self.epochs, status="")
        self._batch_task = self._progress.add_task("batches", total=None, status="")

    def on_epoch_begin(self, epoch, logs=None):
        self._progress.reset(self._batch_task, total=self.params.get("steps"), status="")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        status = f"loss {loss:.4f}" if loss is not None else ""
        self._progress.update(self._batch_task, completed=batch + 1, status=status)

    def on_epoch_end(self, epoch, logs=None):
        text = "  ".join(
            f"{key} {value:.4f}" for key, value in (logs or {}).items() if key != "learning_rate"
        )
        self._progress.update(self._epochs_task, completed=epoch + 1, status=text)
        self._progress.console.print(f"epoch {epoch + 1:>3}/{self.epochs}  {text}", soft_wrap=True)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch (training and validation), in ``seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)
