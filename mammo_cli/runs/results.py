"""Finished run folders as Python objects, for notebooks (:func:`load_run`).

A :class:`Run` reads a scored run folder (train, evaluate, baseline, ensemble) through
:class:`~mammo_cli.runs.folder.RunFolder`: its config, metrics, test predictions, plots,
warnings, provenance and model (loaded in Keras' safe mode). A :class:`Holdout` reads a
holdout folder and its splits. No TensorFlow here until a model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mammo_cli.errors import MammoError
from mammo_cli.runs.folder import (
    PROVENANCE_FILE,
    SCORED_COMMANDS,
    SUMMARY_FILES,
    RunFolder,
    TestPredictions,
    read_json,
)

#: a path, or a :class:`Run`
PathLike = str | os.PathLike[str]
#: the scores a Run's summary shows, with their intervals
HEADLINE = ("accuracy", "auc", "f1", "f1_macro")


class Run:
    """A finished run folder (train, evaluate, baseline, ensemble), read for a notebook.

    Everything is read from the folder (:class:`~mammo_cli.runs.folder.RunFolder`), once.
    A Run is path-like: it can be given wherever a run folder is expected.
    """

    def __init__(self, path: PathLike):
        self._folder = RunFolder(Path(path))

    @property
    def path(self) -> Path:
        """The run folder."""
        return self._folder.path

    @property
    def kind(self) -> str:
        """The mammo command that wrote the folder: train, evaluate, baseline, ..."""
        return self._folder.command or "unknown"

    @cached_property
    def config(self) -> DictConfig:
        """The resolved config the run saved (config.yaml)."""
        return self._folder.config()

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """The run's metrics.json: scores, intervals (``ci``), counts, warnings, ..."""
        return self._folder.metrics()

    @cached_property
    def test_predictions(self) -> TestPredictions:
        """One row per test sample: ``labels``, ``probs``, ``predicted`` (class indices),
        ``course_index`` (the patch's index in the course test tensor), ``class_names``."""
        return self._folder.test_predictions()

    @cached_property
    def provenance(self) -> dict[str, Any]:
        """provenance.json: versions, device, command line, data fingerprints."""
        return read_json(self._folder / PROVENANCE_FILE)

    @property
    def plots(self) -> dict[str, Path]:
        """The plots the folder holds, by name (curves, confusion_matrix, roc_curve, ...)."""
        return self._folder.plots()

    @property
    def warnings(self) -> list[str]:
        """What the reviewer found worth saying about the numbers (sentences)."""
        return list(self.metrics.get("warnings", []))

    @property
    def data_dir(self) -> Path:
        """The course folder the run was scored on (the demo set's cache folder if unset)."""
        return Path(self.metrics["data_dir"])

    def load_model(self) -> Any:
        """The saved Keras model, loaded in safe mode (train and ensemble runs)."""
        return self._folder.load_model()

    def __fspath__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        metrics = self.metrics
        test = sum(metrics.get("counts", {}).get("test", {}).values())
        classes = " vs ".join(metrics.get("class_names", []))
        scores = "  ".join(
            f"{key} {_estimate(metrics[key], metrics.get('ci', {}).get(key))}"
            for key in HEADLINE
            if key in metrics
        )
        lines = [
            f"Run({str(self.path)!r})",
            f"  {self.kind}, task {metrics.get('task')} ({classes}), {test} test samples",
            f"  {scores}",
        ]
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s): see .warnings")
        return "\n".join(lines)


class Holdout(Run):
    """A finished ``holdout`` folder: ``metrics`` is holdout.json (every split's metrics,
    ``mean``, ``std``, ``pooled`` with its intervals); ``splits`` are its training runs."""

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """holdout.json."""
        return read_json(self._folder / SUMMARY_FILES["holdout"])

    @property
    def splits(self) -> list[Run]:
        """The training run of each finished split, in split order."""
        return [Run(self.path / run["run_dir"]) for run in self.metrics["runs"]]

    @property
    def warnings(self) -> list[str]:
        """Each split's warnings, prefixed with the split."""
        runs = self.metrics["runs"]
        return [f"split {run['split']}: {text}" for run in runs for text in run.get("warnings", [])]

    def __repr__(self) -> str:
        result = self.metrics
        pooled = result.get("pooled") or {}
        mean, std = result.get("mean") or {}, result.get("std") or {}
        scores = "  ".join(
            f"{key} {_estimate(pooled[key], pooled.get('ci', {}).get(key))}"
            for key in HEADLINE
            if key in pooled
        )
        lines = [
            f"Holdout({str(self.path)!r})",
            f"  task {result['task']}, {len(result['runs'])} of {result['k']} splits finished",
            f"  pooled test predictions: {scores}",
        ]
        if mean.get("auc") is not None:
            lines.append(f"  auc over the splits: {mean['auc']:.3f} ± {std['auc']:.3f} (std)")
        return "\n".join(lines)


def _estimate(value: float | None, bounds: Sequence[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if not bounds else f"{value:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def load_run(path: PathLike) -> Run:
    """The finished run in ``path``: a :class:`Holdout` for a holdout folder, else a
    :class:`Run` (train, evaluate, baseline, ensemble)."""
    folder = RunFolder(Path(path).expanduser())
    if not folder.path.is_dir():
        raise MammoError(f"{path} is not a folder (expected a mammo run folder)")
    if folder.command not in (*SCORED_COMMANDS, *SUMMARY_FILES):
        kinds = ", ".join((*SCORED_COMMANDS, *SUMMARY_FILES))
        raise MammoError(f"{path} is {folder.describe()}; load_run reads the runs of {kinds}")
    if not folder.is_finished:
        status = folder.status()
        reason = f" ({status.get('status')}: {status.get('error')})" if status else ""
        raise MammoError(f"{path} is a run that did not finish{reason}")
    return Holdout(folder.path) if folder.command == "holdout" else Run(folder.path)
