"""mammo as Python functions, for notebooks and scripts: ``mammo_cli.train(...)`` etc.

Each function is its ``mammo`` command: it composes the same config from the same
overrides (Hydra's compose API, :func:`~mammo_cli.commands.launch.prepare_run`, which the
CLI runs too), checks it, claims the run folder, and runs the same command code
(:func:`~mammo_cli.commands.launch.run_prepared`), so it writes the same run folder,
``.hydra/`` and ``<command>.log`` included. What differs is the surface: a bad input
raises :class:`~mammo_cli.errors.MammoError` (never ``SystemExit``), nothing is printed
unless asked for (``verbose=True``: the CLI's tables; ``progress=True``: the training's
progress bars), and the root logger is left alone. A finished folder is read back as a
:class:`~mammo_cli.runs.results.Run` (:func:`load_run`).

This module imports no TensorFlow: the commands import it when they train or predict.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mammo_cli.errors import MammoError
from mammo_cli.runs.results import Holdout, PathLike, Run, load_run

__all__ = [
    "Holdout",
    "Run",
    "baseline",
    "compare",
    "ensemble",
    "evaluate",
    "holdout",
    "load_run",
    "train",
]

#: ``{"trainer.epochs": 5, "model": "scratch_deep"}``, or Hydra override strings
#: (``["trainer.epochs=5", "model=scratch_deep"]``) as typed after ``mammo <command>``
Overrides = Mapping[str, Any] | Sequence[str] | None


# -- the commands -------------------------------------------------------------------------
def train(
    task: str | None = None,
    model: str | None = None,
    data_dir: PathLike | None = None,
    overrides: Overrides = None,
    run_dir: PathLike | None = None,
    progress: bool = False,
    verbose: bool = False,
) -> Run:
    """``mammo train``: train one model, evaluate it on the test set; the finished run.

    ``task`` and ``model`` pick the config groups (None: the config's defaults, task 2.1
    and its recipe's model, or an experiment's); ``data_dir`` a course folder (None: the
    demo set); ``overrides`` any other keys, e.g. ``{"trainer.epochs": 5}``; ``run_dir``
    the run folder (None: ``outputs/train/<date>/<time>`` under the working directory).
    ``progress`` sets ``trainer.progress`` (progress bars); ``verbose`` prints the CLI's
    tables.
    """
    named = {
        "task": _name(task),
        "model": model,
        "data.dir": data_dir,
        "trainer.progress": progress,
    }
    folder, _ = _run_command("train", named, overrides, run_dir, verbose)
    return Run(folder)


def holdout(
    task: str | None = None,
    model: str | None = None,
    data_dir: PathLike | None = None,
    k: int | None = None,
    overrides: Overrides = None,
    run_dir: PathLike | None = None,
    progress: bool = False,
    verbose: bool = False,
) -> Holdout:
    """``mammo holdout``: ``k`` trainings (None: ``holdout.k``, 4) of one config on k
    seeded train/validation splits. The other arguments are :func:`train`'s. A split
    that fails is a :class:`~mammo_cli.errors.PartialFailure` (``.result``: holdout.json)."""
    named = {
        "task": _name(task),
        "model": model,
        "data.dir": data_dir,
        "holdout.k": k,
        "trainer.progress": progress,
    }
    folder, _ = _run_command("holdout", named, overrides, run_dir, verbose)
    return Holdout(folder)


def evaluate(
    run: PathLike,
    data_dir: PathLike | None = None,
    overrides: Overrides = None,
    run_dir: PathLike | None = None,
    verbose: bool = False,
) -> Run:
    """``mammo evaluate``: score the model of ``run`` (a train or ensemble run) on the test
    set of ``data_dir`` (None: the data it was trained on) into a new run folder."""
    named = {"run": run, "data.dir": data_dir}
    folder, _ = _run_command("evaluate", named, overrides, run_dir, verbose)
    return Run(folder)


def baseline(
    task: str | None = None,
    classifier: str | None = None,
    data_dir: PathLike | None = None,
    overrides: Overrides = None,
    run_dir: PathLike | None = None,
    verbose: bool = False,
) -> Run:
    """``mammo baseline``: the scikit-learn baseline (``classifier``: ``logistic``, the
    default, or ``random_forest``) on train's task view and split, as a scored run. The
    same ``task``/``overrides`` as a :func:`train` call give that run's baseline."""
    named = {"task": _name(task), "baseline.model": classifier, "data.dir": data_dir}
    folder, _ = _run_command("baseline", named, overrides, run_dir, verbose)
    return Run(folder)


def ensemble(
    members: Sequence[PathLike],
    weights: Sequence[float] | None = None,
    data_dir: PathLike | None = None,
    overrides: Overrides = None,
    run_dir: PathLike | None = None,
    verbose: bool = False,
) -> Run:
    """``mammo ensemble``: the weighted average (None: equal weights) of the class
    probabilities of ``members`` (train runs of one task), scored on one test set."""
    named = {"members": list(members), "ensemble.weights": weights, "data.dir": data_dir}
    folder, _ = _run_command("ensemble", named, overrides, run_dir, verbose)
    return Run(folder)


def compare(
    a: PathLike,
    b: PathLike,
    metric: str = "auc",
    overrides: Overrides = None,
    run_dir: PathLike | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """``mammo compare``: the paired difference ``b - a`` of ``metric`` on the same test
    samples, with its interval and p-value; returns compare.json (also written into the
    run folder: ``outputs/compare/<date>/<time>`` unless ``run_dir``)."""
    from mammo_cli.commands.compare import RESULT_FILE
    from mammo_cli.runs.folder import read_json

    named = {"a": a, "b": b, "compare.metric": metric}
    folder, _ = _run_command("compare", named, overrides, run_dir, verbose)
    return read_json(folder / RESULT_FILE)


# -- how a command runs -------------------------------------------------------------------
def _name(task: str | float | None) -> str | None:
    """A task name as a string (``2.1`` and ``"2.1"`` both name task 2.1)."""
    return None if task is None else str(task)


def _run_command(
    command: str,
    named: Mapping[str, Any],
    overrides: Overrides,
    run_dir: PathLike | None,
    verbose: bool,
) -> tuple[Path, Any]:
    """Compose, check and claim ``mammo <command>`` with the ``named`` arguments (None:
    not set) and ``overrides``, then run it; (its run folder, the command's result)."""
    from mammo_cli.commands.launch import prepare_run, run_prepared

    given = override_strings(overrides)
    args = [f"{key}={_value(key, value)}" for key, value in named.items() if value is not None]
    if run_dir is not None:
        args.append(f"hydra.run.dir={_value('run_dir', Path(run_dir).expanduser().absolute())}")
    args += given
    _check_each_key_once(args)
    prepared = prepare_run(command, args, one_job=True)
    result = run_prepared(command, prepared, [f"mammo_cli.{command}", *args], show=verbose)
    return prepared.folder, result


def override_strings(overrides: Overrides) -> list[str]:
    """Hydra override strings of ``overrides``: a mapping's values formatted for Hydra's
    grammar (strings quoted, lists in brackets, None as null), strings as the CLI reads
    them (``task=2.1`` works as typed)."""
    from mammo_cli.cli import quote_values

    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise MammoError(f"overrides={overrides!r}: give a dict or a list of key=value strings")
    if isinstance(overrides, Mapping):
        return [f"{key}={_value(key, value)}" for key, value in overrides.items()]
    return quote_values([str(item) for item in overrides])


def _value(key: str, value: Any) -> str:
    """``value`` as Hydra's override grammar reads it back."""
    from mammo_cli.commands.launch import hydra_quoted

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str | os.PathLike):
        return hydra_quoted(os.fspath(value), always=True)
    if isinstance(value, Sequence):
        return "[" + ",".join(_value(key, item) for item in value) + "]"
    raise MammoError(f"{key}={value!r}: expected a number, string, path, bool, None or a list")


def _check_each_key_once(args: Sequence[str]) -> None:
    """An argument and an override (or two overrides) may not set the same key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(args))
    except HydraException:
        return  # a syntax error: prepare_run reports it as the CLI does
    seen: set[str] = set()
    for override in parsed:
        key = override.key_or_group
        if key in seen:
            raise MammoError(f"{key} is set twice (an argument and an override, or two overrides)")
        seen.add(key)
