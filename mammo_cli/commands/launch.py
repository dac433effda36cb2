"""What happens before Hydra runs a command, so that a refused command writes nothing.

Hydra creates the run folder (``.hydra/``, the log) before it calls the task function,
and its callbacks cannot stop a run. So the dispatcher first composes the config exactly
as Hydra will (Hydra's compose API, same overrides), validates it
(:func:`~mammo_cli.config.validate.validate`), checks ``resume=``, and claims the run
folder (:func:`~mammo_cli.runs.folder.claim_folder`: never a folder holding another run,
never two processes in one folder). Hydra then runs with that folder fixed. A sweep's
shared settings are checked here; each job's own values again when it starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig

from mammo_cli.config.validate import validate
from mammo_cli.errors import MammoError
from mammo_cli.runs.folder import RunFolder, claim_folder

#: Hydra's command-line flags that run jobs (any other flag only prints: --cfg, --help, ...)
MULTIRUN_FLAGS = ("-m", "--multirun")
#: commands that can continue an interrupted run (``resume=<folder>``)
RESUMABLE = ("train", "holdout")
_PLAIN_PATH = re.compile(r"^[\w./-]+$", re.ASCII)  # non-ASCII paths are quoted


def claim_run(command: str, args: Sequence[str]) -> list[str]:
    """Check ``mammo <command> <args>`` and claim its folder; return the arguments Hydra
    runs with (the claimed folder given explicitly). Arguments that only print (``--cfg``,
    ``--help``) are returned as they are."""
    flags = [arg for arg in args if arg.startswith("-")]
    if any(flag not in MULTIRUN_FLAGS for flag in flags):
        return list(args)
    overrides = [arg for arg in args if not arg.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    shared = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_module("mammo_cli.conf", version_base="1.3"):
        cfg = compose(config_name=command, overrides=shared, return_hydra_config=True)
    validate(cfg, command)
    check_resume(cfg, command, overrides)
    multirun = bool(flags) or cfg.hydra.mode == RunMode.MULTIRUN
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    resume = cfg.get("resume")
    folder = Path(str(resume if resume is not None else cfg.hydra[key.split(".")[1]].dir))
    folder = folder.expanduser().absolute()
    claim_folder(folder, resume=resume is not None)
    kept = [arg for arg in args if arg.partition("=")[0] != key]
    return [*kept, f"{key}={_quoted(folder)}"]


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


def _quoted(path: Path) -> str:
    """A path as a Hydra override value (quoted unless it is plainly safe)."""
    text = str(path)
    if _PLAIN_PATH.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
