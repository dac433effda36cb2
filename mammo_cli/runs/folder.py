"""The run folder: what every mammo command writes, and how other commands read it back.

One module owns the layout, so no other code spells a file name of a run folder. It
never imports TensorFlow (Keras is imported only by :meth:`RunFolder.load_model`), so
commands can check a ``run=`` argument before TensorFlow loads.

Every command's folder holds ``config.yaml`` (the resolved config) and
``provenance.json`` (which command, when, with what; written first). A folder that
scored a test set (``train``, ``ensemble``, ``baseline``, ``evaluate``) also holds
``metrics.json`` (written last: its presence means the run finished),
``test_predictions.csv`` and the plots; ``train`` and ``ensemble`` folders hold the model
(``model.keras``), which is what every ``run=`` command takes. A failed run holds
``status.json`` with the reason instead of ``metrics.json``; an interrupted training
holds its last epoch's ``checkpoint/``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from mammo_cli.errors import MammoError

if TYPE_CHECKING:
    import keras

CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
TEST_PREDICTIONS_FILE = "test_predictions.csv"
#: an ensemble's member table (what ``mammo ensemble`` scored for each member)
MEMBERS_FILE = "members.json"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE = "state.npz"
LOCK_FILE = ".mammo.lock"
#: the plots a scored run may hold, by what they show
PLOTS = {
    "curves": "curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "roc_curve": "roc_curve.png",
    "calibration": "calibration.png",
}
#: commands whose folder holds a model that ``run=`` commands take
MODEL_COMMANDS = ("train", "ensemble")
#: commands whose folder holds scored test predictions (``mammo compare``, ``mammo report``)
SCORED_COMMANDS = ("train", "ensemble", "baseline", "evaluate")
#: the file whose presence means a run finished, where it is not metrics.json
SUMMARY_FILES = {"holdout": "holdout.json"}
#: what marks a folder as already holding a run (a new run never starts there)
_RUN_MARKERS = (CONFIG_FILE, PROVENANCE_FILE, METRICS_FILE, STATUS_FILE, MODEL_FILE, ".hydra")


@dataclass(frozen=True)
class TestPredictions:
    """A scored run's test predictions, one row per test sample in test-set order."""

    class_names: list[str]
    #: class index of each sample
    labels: np.ndarray
    #: raw model outputs per class (rows of a sigmoid model need not sum to 1)
    probs: np.ndarray
    #: the bootstrap unit of each sample (a pair, a patient, or the sample itself)
    units: np.ndarray
    #: index of each sample's patch in the course tensor (the abnormality's, for pairs)
    course_index: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """The class index each sample is predicted as (test_predictions.csv's
        ``predicted``: the most probable class)."""
        return np.argmax(self.probs, axis=1)


class RunFolder:
    """A folder written by a mammo command, read through one interface."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- what the folder is -------------------------------------------------------------
    @property
    def command(self) -> str | None:
        """The mammo command that wrote the folder (from provenance.json), if known."""
        path = self / PROVENANCE_FILE
        if path.is_file():
            command = read_json(path).get("command")
            return str(command) if command else None
        if (self / CONFIG_FILE).is_file():
            return "train"  # a folder of an older mammo, which wrote no provenance.json
        return None

    def holds_run(self) -> bool:
        """Whether the folder already holds a run (results, config, model or checkpoint)."""
        return any((self / name).exists() for name in _RUN_MARKERS) or self.has_checkpoint()

    @property
    def is_finished(self) -> bool:
        """Whether the run finished: it wrote ``metrics.json`` (a holdout: holdout.json)."""
        return (self / SUMMARY_FILES.get(self.command or "", METRICS_FILE)).is_file()

    def has_checkpoint(self) -> bool:
        """Whether the folder holds the checkpoint of an unfinished training."""
        return (self / CHECKPOINT_DIR / CHECKPOINT_STATE).is_file()

    def describe(self) -> str:
        """What the folder is, in words for messages: "a mammo evaluate folder" etc."""
        command = self.command
        if command is None:
            return "not a folder written by mammo"
        if command not in (*SCORED_COMMANDS, *SUMMARY_FILES):
            return f"a mammo {command} folder"
        return f"a{' finished' if self.is_finished else 'n unfinished'} mammo {command} folder"

    # -- what it recorded ---------------------------------------------------------------
    def config(self) -> DictConfig:
        """The resolved config the run saved, checked against its command's schema."""
        from mammo_cli.config import COMMAND_SCHEMAS

        path = self / CONFIG_FILE
        if not path.is_file():
            raise MammoError(f"{self.path} is not a mammo run folder (no {CONFIG_FILE})")
        schema = COMMAND_SCHEMAS.get(self.command or "train")
        try:
            loaded = OmegaConf.load(path)
            return OmegaConf.merge(OmegaConf.structured(schema), loaded) if schema else loaded
        except Exception as exc:  # OmegaConf/YAML errors of a damaged or foreign file
            raise MammoError(f"{path} is not a valid mammo config ({_first_line(exc)})") from exc

    def metrics(self) -> dict[str, Any]:
        """``metrics.json`` (a MammoError if it is missing, truncated or not an object)."""
        return read_json(self / METRICS_FILE)

    def status(self) -> dict[str, Any] | None:
        """``status.json`` of a failed or interrupted run, else None."""
        path = self / STATUS_FILE
        return read_json(path) if path.is_file() else None

    def plots(self) -> dict[str, Path]:
        """The plots the folder holds, by name (curves, confusion_matrix, ...)."""
        return {name: self / file for name, file in PLOTS.items() if (self / file).is_file()}

    @property
    def task(self) -> DictConfig:
        """The task (classes, positive class, pairs) the run answers."""
        task = self.config().get("task")
        if task is None:
            raise MammoError(f"{self.path}: its {CONFIG_FILE} records no task")
        return task

    @property
    def output_activation(self) -> str:
        """How the model's outputs are scored: a sigmoid model's per-class scores or a
        distribution (softmax models, ensembles and scikit-learn baselines)."""
        if self.command == "baseline":  # its config's model (e.g. a sigmoid preset) is unused
            return "softmax"
        return str(OmegaConf.select(self.config(), "model.output_activation", default="softmax"))

    def test_predictions(self) -> TestPredictions:
        """The rows of ``test_predictions.csv``."""
        path = self / TEST_PREDICTIONS_FILE
        if not path.is_file():
            raise MammoError(f"{self.path} has no {TEST_PREDICTIONS_FILE} ({self.describe()})")
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            names = [c[len("prob_") :] for c in rows[0] if c.startswith("prob_")] if rows else []
            index = {name: i for i, name in enumerate(names)}
            return TestPredictions(
                class_names=names,
                labels=np.array([index[row["label"]] for row in rows], dtype=np.int64),
                probs=np.array([[float(row[f"prob_{n}"]) for n in names] for row in rows]),
                units=np.array([int(row["unit"]) for row in rows], dtype=np.int64),
                course_index=np.array([int(row["course_index"]) for row in rows], dtype=np.int64),
            )
        except (KeyError, ValueError, csv.Error, UnicodeDecodeError) as exc:
            raise MammoError(f"{path} is damaged ({_first_line(exc)})") from exc

    def load_model(self) -> keras.Model:
        """The saved model, loaded in Keras' safe mode (no code from the file runs)."""
        import keras

        path = self / MODEL_FILE
        if not path.is_file():
            raise MammoError(f"{self.path} holds no {MODEL_FILE} ({self.describe()})")
        try:
            return keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # Keras raises many types for a bad or unsafe archive
            legacy = _mammo_layers(path)
            if legacy:
                raise MammoError(
                    f"{path} was saved by an earlier mammo with its own layers "
                    f"({', '.join(legacy)}), which this version replaced by Keras' built-in "
                    "ones; train the run again, or use the mammo version that wrote it"
                ) from exc
            raise MammoError(
                f"{path} is not a loadable Keras model in safe mode ({_first_line(exc)})"
            ) from exc


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object written by mammo; a clear MammoError if it is damaged."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MammoError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:  # unreadable, truncated, not UTF-8, not JSON
        raise MammoError(f"{path} is damaged or unreadable ({_first_line(exc)})") from exc
    if not isinstance(payload, dict):
        raise MammoError(
            f"{path} is damaged (expected a JSON object, found {type(payload).__name__})"
        )
    return payload


def open_run(path: str | os.PathLike[str], argument: str = "run", model: bool = True) -> RunFolder:
    """The finished run folder named by a command-line argument, or a MammoError saying
    what the folder is instead. ``model``: it must hold a model (train or ensemble)."""
    run = RunFolder(Path(path).expanduser())
    if not run.path.is_dir():
        raise MammoError(f"{argument}={path} is not a folder (expected a mammo run folder)")
    if not os.access(run.path, os.R_OK | os.X_OK):
        raise MammoError(f"{argument}={path} is not readable")
    accepted = MODEL_COMMANDS if model else SCORED_COMMANDS
    if run.command not in accepted:
        raise MammoError(
            f"{argument}={path} is {run.describe()}; expected the folder of a "
            f"{' or '.join(f'mammo {c}' for c in accepted)} run"
        )
    if not run.is_finished:
        status = run.status()
        reason = f" ({status.get('status')}: {status.get('error')})" if status else ""
        raise MammoError(f"{argument}={path} is a run that did not finish{reason}")
    return run


class FolderLock:
    """An exclusive lock on a run folder for this process's lifetime (``flock``).

    The lock file stays behind, empty; the operating system drops the lock when the
    process ends, however it ends, so a killed run never leaves a stale lock.
    """

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False if another process holds it."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Drop the lock (also dropped when the process ends)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim_folder(path: Path, resume: bool = False) -> FolderLock:
    """Lock ``path`` for a new run (or, with ``resume``, for continuing the run there).

    A new run never starts in a folder that holds another run, and two processes never
    run in one folder: both are refused with a MammoError before anything is written
    (a folder created here for the lock is removed again).
    """
    created = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(path)
        locked = lock.acquire()
    except OSError as exc:
        raise MammoError(f"cannot use {path} as a run folder ({exc.strerror or exc})") from exc
    try:
        if not locked:
            raise MammoError(f"{path} is in use by another mammo process; pick another folder")
        if not resume and RunFolder(path).holds_run():
            raise MammoError(
                f"{path} already holds a run ({RunFolder(path).describe()}); continue it with "
                "resume=<that folder> or give a new folder (hydra.run.dir=...)"
            )
    except MammoError:
        lock.release()
        if created:
            (path / LOCK_FILE).unlink(missing_ok=True)
            for folder in created:  # deepest first: only what this call created
                folder.rmdir()
        raise
    return lock


def _mammo_layers(path: Path) -> list[str]:
    """The layers registered by mammo itself (``mammo>...``) that the Keras archive
    ``path`` names: earlier versions saved such layers; [] if none or unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return []
    return sorted(set(re.findall(r'"registered_name": "mammo>(\w+)"', config)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
