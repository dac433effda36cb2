"""One thin module per subcommand: glue between the config and the library.

Each Hydra command module has ``run(cfg, run_dir)``, which does the work into the run
folder and returns its result (printing nothing), and ``show(cfg, result, run_dir)``,
which prints what the CLI shows at the end; ``objective(result)``, where a module has
it, is the number a sweeper optimises. :func:`execute` runs a command once its config
is composed and checked (:mod:`mammo_cli.config.validate`) and its folder claimed
(:mod:`mammo_cli.commands.launch`), for the CLI (:func:`task_function`) and the Python
API (:mod:`mammo_cli.api`) alike. The folder's record (config, provenance, and the status
of a failed run) is written here, for every command alike. Heavy imports (TensorFlow)
happen inside ``run`` so that ``mammo --help`` and config errors stay fast.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mammo_cli.config.validate import validate
from mammo_cli.errors import MammoError, PartialFailure
from mammo_cli.files import write_json, write_text
from mammo_cli.runs.folder import (
    CHECKPOINT_DIR,
    CHECKPOINT_STATE,
    CONFIG_FILE,
    PROVENANCE_FILE,
    STATUS_FILE,
    RunFolder,
    read_json,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """How a job was started, as its provenance.json records it."""

    #: the command line (the API: the function and the overrides it composed)
    argv: list[str]
    #: the overrides of the job's config (Hydra's ``hydra.overrides.task``)
    overrides: list[str] = field(default_factory=list)
    #: the option Hydra picked in each config group (``hydra.runtime.choices``)
    choices: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, hydra: DictConfig, argv: Sequence[str]) -> Launch:
        """The launch of a job whose Hydra config (the ``hydra`` node) is ``hydra``."""
        choices = OmegaConf.to_container(hydra.runtime.choices)
        return cls(list(argv), list(hydra.overrides.task), choices)  # type: ignore[arg-type]


#: the launch of the job running in this context (read by :func:`run_provenance`)
_launch: ContextVar[Launch | None] = ContextVar("mammo_launch", default=None)


def current_run_dir() -> Path:
    """The folder Hydra made for this job (honours hydra.run.dir / hydra.sweep.dir)."""
    return Path(HydraConfig.get().runtime.output_dir)


def record_run(
    cfg: DictConfig,
    run_dir: Path,
    command: str,
    body: Callable[[Path], T],
    summary_file: str = "metrics.json",
    **facts: Any,
) -> T:
    """Write ``config.yaml`` and ``provenance.json``, run ``body(run_dir)``; on failure
    write ``status.json`` with the reason (and re-raise).

    A failed run therefore leaves its error on disk and never a ``metrics.json``. With
    ``logger=mlflow`` the folder is also an MLflow run. ``facts`` go into provenance.json.
    """
    from mammo_cli.training.tracking import tracked_run

    if cfg.get("resume") is None:  # a resumed run keeps the config it saved
        write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    provenance = run_dir / PROVENANCE_FILE
    if not provenance.is_file():  # a resumed run keeps the record of how it started
        write_json(provenance, {**run_provenance(cfg, command), **facts})
    (run_dir / STATUS_FILE).unlink(missing_ok=True)  # left by an earlier, resumed attempt
    try:
        with tracked_run(cfg, run_dir, summary_file):
            return body(run_dir)
    except BaseException as exc:
        write_json(
            run_dir / STATUS_FILE,
            {
                "status": "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            },
        )
        raise


def data_config(cfg: DictConfig, command: str) -> DictConfig | None:
    """The ``data`` config of the data a command reads (``evaluate`` and ``ensemble``
    without ``data.dir``: their runs'), None for commands that read no course folder."""
    data = OmegaConf.select(cfg, "data", default=None)
    if data is None or data.dir is not None:
        return data
    source = {"evaluate": lambda: cfg.run, "ensemble": lambda: cfg.members[0]}.get(command)
    return RunFolder(source()).config().data if source else data


def run_provenance(cfg: DictConfig, command: str) -> dict[str, Any]:
    """provenance.json of a run: versions, device, command line, the choices Hydra made,
    the sha256 of every course file read (:mod:`mammo_cli.provenance`); ``evaluate``
    adds the provenance of the run it scores. The command line, overrides and choices
    are those of the job :func:`execute` runs (else the process's command line)."""
    from mammo_cli.data.fingerprints import course_files
    from mammo_cli.data.source import default_cache_dir, resolve_data_dir
    from mammo_cli.provenance import collect_provenance

    launch = _launch.get() or Launch(list(sys.argv))
    data = data_config(cfg, command)
    files = {} if data is None else course_files(resolve_data_dir(data.dir, data.cache_dir))
    cache = default_cache_dir() if data is None or data.cache_dir is None else Path(data.cache_dir)
    record = collect_provenance(
        command,
        launch.argv,
        launch.overrides,
        files,
        datetime.now(timezone.utc),
        cache.expanduser(),
    )
    record["choices"] = dict(launch.choices)
    if command == "evaluate":
        source = RunFolder(cfg.run) / PROVENANCE_FILE
        record["training_run"] = read_json(source) if source.is_file() else None
    return record


def resumed_config(cfg: DictConfig, command: str) -> DictConfig:
    """The config the run in folder ``cfg.resume`` saved, checked again, with ``resume``
    set (a resumed run continues with the config it started with)."""
    saved = RunFolder(cfg.resume).config()
    validate(saved, command)
    saved.resume = cfg.resume
    return saved


def execute(command: str, cfg: DictConfig, run_dir: Path, launch: Launch, show: bool) -> Any:
    """Run ``mammo <command>`` on its composed, checked ``cfg`` into the claimed ``run_dir``
    (with ``resume=``, on the config that run saved): ``commands.<command>.run`` inside
    :func:`record_run`, then, with ``show``, its ``show`` (the CLI's tables). Returns the
    command's result. An interrupted training that saved a checkpoint is a MammoError
    saying how to resume it."""
    if OmegaConf.select(cfg, "resume", default=None) is not None:
        cfg = resumed_config(cfg, command)
    module = importlib.import_module(f"mammo_cli.commands.{command}")
    summary = getattr(module, "SUMMARY_FILE", "metrics.json")

    def body(folder: Path) -> Any:
        try:
            result = module.run(cfg, folder)
        except PartialFailure as failure:  # what did finish is shown before the error
            if show:
                module.show(cfg, failure.result, folder)
            raise
        if show:
            module.show(cfg, result, folder)
        return result

    token = _launch.set(launch)
    try:
        return record_run(cfg, run_dir, command, body, summary)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: status.json says interrupted
        if not any(run_dir.rglob(f"{CHECKPOINT_DIR}/{CHECKPOINT_STATE}")):
            raise
        raise MammoError(
            f"interrupted; its last finished epoch is saved: mammo {command} resume={run_dir}"
        ) from None
    finally:
        _launch.reset(token)


def task_function(command: str, traceback_wanted: bool = False) -> Callable[[DictConfig], Any]:
    """The Hydra task function of ``mammo <command>``: :func:`execute` in the job's folder,
    showing the command's tables; returns the command's ``objective`` (what a sweeper
    optimises), if it has one. A user mistake in a single run ends the process with the
    one-line ``mammo: error:`` (exit status 2) unless ``traceback_wanted``; in a sweep it
    reaches Hydra, which reports the job that failed."""
    module = importlib.import_module(f"mammo_cli.commands.{command}")

    def run(cfg: DictConfig) -> Any:
        hydra = HydraConfig.get()
        resume = OmegaConf.select(cfg, "resume", default=None)
        if resume is None and hydra.mode == RunMode.MULTIRUN:
            validate(cfg, command)  # this job's own sweep values (the rest: before launch)
        try:
            result = execute(command, cfg, current_run_dir(), Launch.of(hydra, sys.argv), True)
        except MammoError as exc:
            if hydra.mode == RunMode.RUN and not traceback_wanted:
                sys.stderr.write(f"mammo: error: {exc}\n")
                raise SystemExit(2) from None
            raise
        objective = getattr(module, "objective", None)
        return None if objective is None else objective(result)

    return run
