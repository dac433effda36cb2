"""``mammo <command> [overrides]``: picks the subcommand and hands the rest to Hydra.

Only the dispatcher lives here. It must stay light: ``mammo --help`` and config
errors answer without importing TensorFlow (the command modules import it inside
their ``run`` functions, after the config has been composed and validated).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence

from mammo_cli.errors import MammoError

#: command name -> (module under mammo_cli.commands, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train one model (add -m to sweep overrides); writes a run folder"),
    "evaluate": ("evaluate", "re-evaluate a saved run on a test set: run=<run dir>"),
    "predict": ("predict", "classify new patches with a saved run: run=<dir> input=<path>"),
    "explain": ("explain", "Grad-CAM heatmaps of a saved run: run=<dir> [input=<path>] [n=16]"),
    "baseline": (
        "baseline",
        "a scikit-learn baseline on train's task view and split; no TensorFlow",
    ),
    "holdout": ("holdout", "k trainings on k seeded train/validation splits (holdout.k=4)"),
    "ensemble": ("ensemble", "average saved runs of one task: members=[<run dir>,...]"),
    "report": ("report", "one comparison table of the runs under a folder: report <folder>"),
    "compare": ("compare", "paired difference of two runs on the same test set: compare <A> <B>"),
    "prepare": ("prepare", "build course tensors from CBIS-DDSM: source=DIR csv_dir=DIR out=DIR"),
    "data": ("data", "`data demo out=DIR` writes the demo set; `data describe` inspects data"),
    "cache": ("cache", "`cache clear [cache_dir=DIR]` deletes the shared backbone-feature cache"),
}

#: commands that take plain key=value arguments instead of a Hydra config
PLAIN_COMMANDS = {"data", "report", "cache"}

#: two-word commands run as Hydra apps: (command, action) -> config and module name
HYDRA_ACTIONS = {("data", "describe"): "describe"}

#: commands whose leading positional arguments are config keys: compare A B -> a=A b=B
POSITIONAL = {"compare": ("a", "b")}

USAGE = """usage: mammo <command> [key=value ...] [-m] [--cfg job] [--help]

Train and evaluate CNNs on mammogram abnormality patches (CBIS-DDSM course format).

commands:
{commands}

examples:
  mammo train task=2.1 model=scratch
  mammo train -m task=2.1 model.hidden_units=64,128,256,512 trainer.batch_size=25,50
  mammo train task=2.2 data.dir=/path/to/course_npy trainer.epochs=20
  mammo evaluate run=outputs/train/2026-01-01/12-00-00-000000
  mammo train resume=outputs/train/2026-01-01/12-00-00-000000   (continue a killed run)
  mammo predict run=outputs/train/<A> input=private_test_tensor.npy
  mammo explain run=outputs/train/<A> n=16
  mammo baseline task=2.2 baseline.model=random_forest
  mammo holdout experiment=table2_holdout_21
  mammo ensemble members=[outputs/train/<A>,outputs/train/<B>]
  mammo report outputs/train-multirun/2026-01-01/12-00-00-000000
  mammo compare outputs/train/<A> outputs/train/<B> compare.metric=auc
  mammo prepare source=~/CBIS-DDSM csv_dir=~/cbis-csv out=data/cbis_course
  mammo data describe data.dir=/path/to/course_npy task=2.2
  mammo train --help          (config groups and every key of a command)

Set HYDRA_FULL_ERROR=1 to see a full traceback on errors.
"""

# Config groups whose option names look like numbers (task=2.1, task=4). Hydra parses
# an unquoted 2.1 as a float and refuses it as a group choice, so these values are
# quoted before Hydra sees them: task=2.1,2.2 becomes task='2.1','2.2'.
_NUMERIC_GROUPS = ("task", "recipe")
_NUMERIC_CHOICE = re.compile(
    r"^(?P<key>[+~]{0,2}(?:" + "|".join(_NUMERIC_GROUPS) + r"))="
    r"(?P<values>[0-9][0-9.]*(?:,[0-9][0-9.]*)*)$"
)
# Characters that make a value more than one plain string for Hydra's override grammar.
_GRAMMAR = set(",[]{}()'\"$\\ ")


def quote_values(overrides: Sequence[str]) -> list[str]:
    """Quote what Hydra's grammar would misread: numeric group choices (``task=2.1``
    works as typed) and plain values with non-ASCII characters (``data.dir=/données``)."""
    quoted = []
    for override in overrides:
        match = _NUMERIC_CHOICE.match(override)
        key, sep, value = override.partition("=")
        if match:
            values = ",".join(f"'{value}'" for value in match["values"].split(","))
            override = f"{match['key']}={values}"
        elif sep and not value.isascii() and not _GRAMMAR & set(value):
            override = f"{key}='{value}'"
        quoted.append(override)
    return quoted


def _fail(message: str) -> int:
    sys.stderr.write(f"mammo: error: {message}\n")
    return 2


def with_named_positionals(command: str, args: Sequence[str]) -> list[str]:
    """``compare A B k=v`` -> ``a=A b=B k=v`` (values quoted for Hydra's grammar)."""
    names = list(POSITIONAL.get(command, ()))
    named = []
    for arg in args:
        if names and "=" not in arg and not arg.startswith("-"):
            escaped = arg.replace("\\", "\\\\").replace("'", "\\'")
            arg = f"{names.pop(0)}='{escaped}'"
        named.append(arg)
    return named


def _run_hydra_command(command: str, overrides: list[str], traceback_wanted: bool) -> None:
    """Run ``mammo <command>`` as a Hydra app over ``overrides``."""
    import hydra

    from mammo_cli.commands import task_function
    from mammo_cli.commands.launch import claim_run
    from mammo_cli.config import register_configs

    register_configs()
    args = claim_run(command, quote_values(with_named_positionals(command, overrides)))
    app = hydra.main(config_path="pkg://mammo_cli.conf", config_name=command, version_base="1.3")(
        task_function(command, traceback_wanted)
    )
    sys.argv = [f"mammo {command}", *args]
    app()


def _is_user_config_error(exc: BaseException) -> bool:
    """Errors that come from what the user typed or wrote in a config file."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, ValueError) and str(exc).startswith("Only one of --run, --multirun"):
        return True  # Hydra's refusal of e.g. -m together with --cfg
    return isinstance(exc, HydraException | OmegaConfBaseException)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mammo`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        width = max(len(name) for name in COMMANDS)
        listing = "\n".join(
            f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()
        )
        sys.stdout.write(USAGE.format(commands=listing))
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return _fail(f"unknown command '{command}' (expected one of: {', '.join(COMMANDS)})")

    wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # Let exceptions reach this function instead of Hydra's own multi-line report.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    action = HYDRA_ACTIONS.get((command, rest[0] if rest else ""))
    try:
        if action:
            _run_hydra_command(action, rest[1:], wants_traceback)
        elif command in PLAIN_COMMANDS:
            module = importlib.import_module(f"mammo_cli.commands.{COMMANDS[command][0]}")
            module.main(rest)
        else:
            _run_hydra_command(command, rest, wants_traceback)
    except MammoError as exc:
        if wants_traceback:
            raise
        return _fail(str(exc))
    except Exception as exc:
        if wants_traceback:
            raise
        if _is_user_config_error(exc):
            from mammo_cli.commands.launch import config_error_line

            return _fail(config_error_line(exc, action or command))
        # After the config check: Hydra's MissingConfigException is an OSError too.
        if isinstance(exc, OSError) and exc.filename is not None:
            return _fail(f"cannot use {exc.filename}: {exc.strerror}")  # e.g. a run folder
        raise
    except KeyboardInterrupt:
        return _fail("interrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
