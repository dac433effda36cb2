"""Per-epoch training checkpoints, so that an interrupted training can be resumed.

After every epoch :class:`TrainingCheckpoint` writes ``<run dir>/checkpoint/state.npz``
whole (temp file + rename): the model's variables, the optimizer's variables, the early
stopping state with its best weights, and the history and epoch times so far. One file
is one consistent checkpoint: a training killed at any moment leaves the checkpoint of
its last finished epoch. A resumed fit restores all of it before its first epoch, so
early stopping, ``history.csv`` and ``epochs_run`` continue as if never interrupted
(the shuffling and augmentation random streams restart, so the later epochs' numbers
are not bit-identical to an uninterrupted run's). The run deletes the folder once its
``metrics.json`` is written.

:func:`sigterm_interrupts` turns SIGTERM (what schedulers send before killing a job)
into a :class:`KeyboardInterrupt`, like Ctrl-C: the run stops at once, keeps the last
epoch's checkpoint and records ``status.json`` as interrupted.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from mammo_cli.errors import MammoError
from mammo_cli.files import write_with
from mammo_cli.runs.folder import CHECKPOINT_DIR
from mammo_cli.runs.folder import CHECKPOINT_STATE as STATE_FILE
from mammo_cli.training.callbacks import EpochTimer

_GROUPS = ("model", "optimizer", "best")


def remove_checkpoint(run_dir: Path) -> None:
    """Delete ``run_dir``'s checkpoint folder (once the run's results are written)."""
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Save the training state after each epoch; restore it when the fit begins.

    It must come after ``early_stopping`` and ``timer`` in the callback list: it saves
    their state of the epoch just ended and restores theirs after they reset it.
    ``restore=False`` starts afresh (an old checkpoint is overwritten after epoch 1).
    """

    def __init__(
        self,
        folder: Path,
        early_stopping: keras.callbacks.EarlyStopping,
        timer: EpochTimer,
        restore: bool,
    ):
        super().__init__()
        self.path = folder / STATE_FILE
        self.early_stopping = early_stopping
        self.timer = timer
        self.history: dict[str, list[float]] = {}
        self._arrays: dict[str, list[np.ndarray]] = {}
        #: epochs finished before this fit, and whether early stopping had ended them
        self.initial_epoch = 0
        self.stopped = False
        if restore and self.path.is_file():
            self._read()

    def _read(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                state = json.loads(str(archive["state"]))
                self._arrays = {
                    group: [archive[f"{group}_{i}"] for i in range(state["counts"][group])]
                    for group in _GROUPS
                }
        except Exception as exc:  # a checkpoint not written by this class
            raise MammoError(f"{self.path} is not a readable mammo checkpoint ({exc})") from exc
        self.initial_epoch = state["epoch"]
        self.stopped = state["stopped"]
        self.history = state["history"]
        self._state = state

    def on_train_begin(self, logs=None):
        if not self._arrays:
            return
        model, state = self.model, self._state
        if not model.optimizer.built:  # Keras builds it at the first step otherwise
            model.optimizer.build(model.trainable_variables)
        for group, variables in (
            ("model", model.variables),
            ("optimizer", model.optimizer.variables),
        ):
            values = self._arrays[group]
            if len(values) != len(variables):
                raise MammoError(
                    f"{self.path} holds {len(values)} {group} variables, the model has "
                    f"{len(variables)}; it was written by another model"
                )
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)
        stopping = self.early_stopping
        stopping.wait, stopping.best, stopping.best_epoch = (
            state["wait"],
            state["best"],
            state["best_epoch"],
        )
        stopping.best_weights = self._arrays["best"] or None
        self.timer.seconds = list(state["epoch_seconds"])

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        stopping = self.early_stopping
        state = {
            "epoch": epoch + 1,
            "stopped": bool(self.model.stop_training),
            "wait": stopping.wait,
            "best": None if stopping.best is None else float(stopping.best),
            "best_epoch": stopping.best_epoch,
            "history": self.history,
            "epoch_seconds": self.timer.seconds,
        }
        arrays = {
            "model": [v.numpy() for v in self.model.variables],
            "optimizer": [v.numpy() for v in self.model.optimizer.variables],
            "best": list(stopping.best_weights or []),
        }
        state["counts"] = {group: len(values) for group, values in arrays.items()}
        entries = {
            f"{group}_{i}": value
            for group, values in arrays.items()
            for i, value in enumerate(values)
        }
        write_with(
            self.path, lambda tmp: np.savez(tmp, state=np.array(json.dumps(state)), **entries)
        )


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`KeyboardInterrupt` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
