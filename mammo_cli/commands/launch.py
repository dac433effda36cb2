"""What happens before a command runs, so that a refused command writes nothing.

Hydra creates the run folder (``.hydra/``, the log) before it calls the task function,
and its callbacks cannot stop a run. So :func:`prepare_run` first composes the config
exactly as Hydra will (Hydra's compose API, same overrides), validates it
(:func:`~mammo_cli.config.validate.validate`), checks ``resume=``, and claims the run
folder (:func:`~mammo_cli.runs.folder.claim_folder`: never a folder holding another run,
never two processes in one folder). A sweep's shared settings are checked here; each
job's own values again when it starts.

The CLI then runs Hydra with that folder fixed (:func:`claim_run`); the Python API
(:mod:`mammo_cli.api`) runs the one job itself (:func:`run_prepared`), writing the folder
as Hydra's ``run_job`` would, without Hydra's global state or logging set-up.
"""

from __future__ import annotations

import copy
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from mammo_cli.config import register_configs
from mammo_cli.config.validate import validate
from mammo_cli.errors import MammoError
from mammo_cli.runs import progress_log
from mammo_cli.runs.folder import FolderLock, RunFolder, claim_folder

#: Hydra's command-line flags that run jobs (any other flag only prints: --cfg, --help, ...)
MULTIRUN_FLAGS = ("-m", "--multirun")
#: commands that can continue an interrupted run (``resume=<folder>``)
RESUMABLE = ("train", "holdout")
_PLAIN_PATH = re.compile(r"^[\w./-]+$", re.ASCII)  # non-ASCII paths are quoted


@dataclass
class PreparedRun:
    """A checked command whose folder is claimed: what Hydra, or the API, runs next."""

    #: the config composed as Hydra composes it, with its ``hydra`` node
    cfg: DictConfig
    #: the claimed folder: the run folder, or a sweep's folder
    folder: Path
    #: the override that fixes the folder (``hydra.run.dir`` or ``hydra.sweep.dir``)
    folder_key: str
    #: held until the process ends, or until the API's run is over
    lock: FolderLock


def prepare_run(
    command: str, overrides: Sequence[str], multirun: bool = False, one_job: bool = False
) -> PreparedRun:
    """Compose, check and claim ``mammo <command> <overrides>`` (``multirun``: ``-m`` was
    given; ``one_job``: a sweep is refused); a MammoError names the first problem, and
    nothing is written then."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        shared = [o.input_line for o in parsed if not o.is_sweep_override()]
        register_configs()
        with initialize_config_module("mammo_cli.conf", version_base="1.3"):
            cfg = compose(config_name=command, overrides=shared, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise MammoError(config_error_line(exc, command)) from exc
    validate(cfg, command)
    check_resume(cfg, command, overrides)
    multirun = multirun or cfg.hydra.mode == RunMode.MULTIRUN
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if one_job and (multirun or sweeps):
        what = " ".join(sweeps) or "this config (hydra.mode=MULTIRUN)"
        raise MammoError(f"{what} is a sweep; run one job per call (loop over the values)")
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    resume = cfg.get("resume")
    folder = Path(str(resume if resume is not None else cfg.hydra[key.split(".")[1]].dir))
    folder = folder.expanduser().absolute()
    lock = claim_folder(folder, resume=resume is not None)
    return PreparedRun(cfg, folder, key, lock)


def claim_run(command: str, args: Sequence[str]) -> list[str]:
    """Check ``mammo <command> <args>`` and claim its folder; return the arguments Hydra
    runs with (the claimed folder given explicitly). Arguments that only print (``--cfg``,
    ``--help``) are returned as they are."""
    flags = [arg for arg in args if arg.startswith("-")]
    if any(flag not in MULTIRUN_FLAGS for flag in flags):
        return list(args)
    overrides = [arg for arg in args if not arg.startswith("-")]
    prepared = prepare_run(command, overrides, multirun=bool(flags))
    kept = [arg for arg in args if arg.partition("=")[0] != prepared.folder_key]
    return [*kept, f"{prepared.folder_key}={hydra_quoted(prepared.folder)}"]


def check_resume(cfg: DictConfig, command: str, overrides: Sequence[str]) -> None:
    """``resume=<folder>`` names an unfinished run of ``command`` and nothing else is set."""
    folder = cfg.get("resume")
    if folder is None:
        return
    if command not in RESUMABLE:
        raise MammoError(f"resume= belongs to mammo train/holdout, not mammo {command}")
    others = [o for o in overrides if o.partition("=")[0] != "resume"]
    if others:
        raise MammoError(
            f"resume={folder} continues a run with the config it saved; drop the other "
            f"overrides ({' '.join(others)})"
        )
    run = RunFolder(Path(folder).expanduser())
    if not run.path.is_dir():
        raise MammoError(f"resume={folder} is not a folder (expected an interrupted run)")
    if run.command is None:
        raise MammoError(f"resume={folder} is not a mammo run folder")
    if run.command != command:
        raise MammoError(f"resume={folder} is {run.describe()}, not a mammo {command} run")
    if run.is_finished:
        raise MammoError(f"resume={folder}: that run has finished; start a new run")
    if command == "train" and not run.has_checkpoint():
        raise MammoError(
            f"resume={folder}: no checkpoint there (the run stopped before its first epoch "
            "ended); start a new run"
        )


def hydra_quoted(value: object, always: bool = False) -> str:
    """A value as Hydra's override grammar reads it back as the same string: quoted
    unless it is a plainly safe path (``always``: quoted in any case, e.g. ``'2.1'``)."""
    text = str(value)
    if not always and _PLAIN_PATH.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# Lines of Hydra/OmegaConf messages that describe internals rather than the mistake.
_NOISE = ("Config search path", "provider=", "reference_type=", "object_type=")
_UNKNOWN_KEY = re.compile(r"Could not override '(?P<key>[^']+)'")


def config_error_line(exc: BaseException, command: str) -> str:
    """Collapse a config-library exception (and its cause) into one readable line."""
    parts = [str(exc)]
    unknown = _UNKNOWN_KEY.search(parts[0])
    if unknown and "To append to your config use +" in parts[0]:
        from mammo_cli.config.validate import fields_at, unknown_key_message

        key = unknown["key"]
        return unknown_key_message(key, fields_at(command, key.rpartition(".")[0]))
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in parts[0]:
        parts.append(str(cause))
    lines = [line.strip() for part in parts for line in part.splitlines()]
    kept = [line for line in lines if line and not line.startswith(_NOISE)]
    text = "; ".join(kept)
    # "Available options in 'task':; 2.1; 2.2" -> "Available options in 'task': 2.1, 2.2"
    head, sep, options = text.partition(":; ")
    if sep and "Available options" in head:
        text = f"{head}: {options.replace('; ', ', ')}"
    if "token recognition error" in text:
        text += " (quote values with special characters: key='value')"
    return text.replace(".;", ";")


# -- the Python API's stand-in for Hydra's run_job ----------------------------------------
def run_prepared(command: str, prepared: PreparedRun, argv: Sequence[str], show: bool) -> Any:
    """Run a prepared single job without Hydra's app, as Hydra's ``run_job`` would: the
    job's config is the composed one without its ``hydra`` node, ``.hydra/`` and the log
    file are written, ``hydra.job.env_set`` is applied, and the command runs through
    :func:`~mammo_cli.commands.execute` (``argv``: what provenance.json records as the
    command line). Returns the command's result; the folder's lock is released after."""
    from hydra.core.utils import env_override

    from mammo_cli.commands import Launch, execute

    try:
        hydra, cfg = _split_hydra_node(prepared.cfg, prepared.folder)
        _write_hydra_record(hydra, cfg, prepared.folder)
        launch = Launch.of(hydra.hydra, argv)
        with env_override(dict(hydra.hydra.job.env_set)), _run_log(hydra, show):
            return execute(command, cfg, prepared.folder, launch, show)
    finally:
        prepared.lock.release()


def _split_hydra_node(composed: DictConfig, folder: Path) -> tuple[DictConfig, DictConfig]:
    """(Hydra's config of the job with its output folder set, the job's config): what
    Hydra hands its task function, done as Hydra's ``run_job`` does it."""
    hydra = OmegaConf.masked_copy(composed, "hydra")
    with read_write(hydra.hydra.runtime), open_dict(hydra.hydra.runtime):
        hydra.hydra.runtime.output_dir = str(folder)
    cfg = copy.deepcopy(composed)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return hydra, cfg


def _write_hydra_record(hydra: DictConfig, cfg: DictConfig, folder: Path) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``, as Hydra writes them
    (``mammo report`` reads the overrides there)."""
    from mammo_cli.files import write_text

    if hydra.hydra.output_subdir is None:
        return
    record = folder / str(hydra.hydra.output_subdir)
    record.mkdir(exist_ok=True)
    write_text(record / "config.yaml", OmegaConf.to_yaml(cfg))
    write_text(record / "hydra.yaml", OmegaConf.to_yaml(hydra))
    write_text(record / "overrides.yaml", OmegaConf.to_yaml(hydra.hydra.overrides.task))


class _ToParent(logging.Handler):
    """Hands a record to the handlers above ``logger`` if it reaches ``level`` (the level
    the application had set): what propagation did before :func:`_run_log`."""

    def __init__(self, logger: logging.Logger, level: int):
        super().__init__(level)
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        if self.logger.parent is not None:
            self.logger.parent.callHandlers(record)


@contextmanager
def _run_log(hydra: DictConfig, verbose: bool) -> Iterator[None]:
    """During one call, mammo's log records at INFO and up go to the run's
    ``<command>.log`` (Hydra's file name and format), and with ``verbose`` the status
    lines (:data:`~mammo_cli.runs.progress_log`) to stdout; the application's handlers
    see what they saw before. The root logger is not touched."""
    logger = logging.getLogger("mammo_cli")
    saved = (logger.level, logger.propagate)
    settings = hydra.hydra.job_logging
    log_file = logging.FileHandler(settings.handlers.file.filename, encoding="utf-8")
    log_file.setFormatter(logging.Formatter(settings.formatters.simple.format))
    log_file.setLevel(logging.INFO)
    forward = _ToParent(logger, logger.getEffectiveLevel())
    status = logging.StreamHandler(sys.stdout)
    status.setFormatter(logging.Formatter("%(message)s"))
    shown = [(logger, log_file), (logger, forward)] + ([(progress_log, status)] if verbose else [])
    for owner, handler in shown:
        owner.addHandler(handler)
    logger.setLevel(min(logging.INFO, logger.getEffectiveLevel()))
    logger.propagate = False
    try:
        yield
    finally:
        for owner, handler in shown:
            owner.removeHandler(handler)
        log_file.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
