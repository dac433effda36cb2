"""One thin module per subcommand: compose the pieces, write the run folder.

Each module's ``run(cfg)`` is a Hydra task function. Heavy imports (TensorFlow) happen
inside ``run`` so that ``mammo --help`` and config errors stay fast.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mammo_cli.errors import MammoError
from mammo_cli.files import write_json, write_text
from mammo_cli.training.tracking import tracked_run

T = TypeVar("T")


def current_run_dir() -> Path:
    """The folder Hydra made for this job (honours hydra.run.dir / hydra.sweep.dir)."""
    return Path(HydraConfig.get().runtime.output_dir)


def in_run_folder(cfg: DictConfig, body: Callable[[Path], T], run_dir: Path | None = None) -> T:
    """Save the resolved config, run ``body(run_dir)``; on failure write ``status.json``.

    A failed run therefore leaves its error on disk and never a ``metrics.json``.
    ``run_dir`` defaults to the folder Hydra made for this job (holdout passes one per split).
    With ``logger=mlflow`` the folder is also an MLflow run (:func:`tracked_run`).
    """
    run_dir = current_run_dir() if run_dir is None else run_dir
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / "status.json").unlink(missing_ok=True)  # left by an earlier, resumed attempt
    try:
        with tracked_run(cfg, run_dir, "metrics.json"):
            return body(run_dir)
    except BaseException as exc:
        write_json(
            run_dir / "status.json",
            {
                "status": "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            },
        )
        raise


def resumed_config(cfg: DictConfig, config_file: str, schema: type) -> DictConfig:
    """The config saved as ``config_file`` in the folder ``cfg.resume`` names, on ``schema``.

    A resumed run continues with the config it started with, so any other override on
    the command line is refused.
    """
    others = [o for o in HydraConfig.get().overrides.task if o.partition("=")[0] != "resume"]
    if others:
        raise MammoError(
            f"resume={cfg.resume} continues a run with the config it saved; "
            f"drop the other overrides ({' '.join(others)})"
        )
    path = Path(cfg.resume) / config_file
    if not path.is_file():
        raise MammoError(f"resume={cfg.resume}: no {config_file} there (expected a run folder)")
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))  # type: ignore[return-value]
    except Exception as exc:
        raise MammoError(f"{path} is not a valid mammo config ({exc})") from exc
