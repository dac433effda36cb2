"""MLflow runs of the ``logger=mlflow`` group: where they are stored and how they are grouped.

One MLflow run per run folder. :func:`tracked_run` opens it around the folder's work
(params = the flattened resolved config) and closes it with the numbers of the folder's
summary file (``metrics.json``, ``holdout.json``) as ``final/<key>`` metrics and the
folder's files as artifacts; the per-epoch metrics come from the Keras callback in
:mod:`mammo_cli.training.loggers`. Grouping:

- a run opened inside another (the splits of a holdout) is nested under it;
- a run of a Hydra multirun job with no such parent is nested under one parent run per
  sweep folder, found by its tags ``mammo.sweep_dir`` and ``mammo.role=sweep`` and
  created by the first job under a file lock in the sweep folder, so it works with any
  launcher whose jobs share that folder (basic, joblib, submitit).

No TensorFlow here, and MLflow is imported only when a run is opened (whether it is
installed is checked with the config, before any training starts).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mammo_cli.config import LoggerConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: the default local store: <working dir>/mlruns/mlflow.db, artifacts in mlruns/artifacts
STORE_DIR = "mlruns"
SQLITE_PREFIX = "sqlite:///"
PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "mammo.sweep_dir"
ROLE_TAG = "mammo.role"
#: MLflow's limits on a param value's and a run name's length
MAX_PARAM_LENGTH = 6000
MAX_RUN_NAME_LENGTH = 250

#: the innermost open run (a holdout's parent run while its splits train)
_current: ContextVar[MlflowRun | None] = ContextVar("mammo_mlflow_run", default=None)


def tracking_uri(cfg: LoggerConfig) -> str:
    """``logger.tracking_uri``, or the default SQLite store under the working directory."""
    if cfg.tracking_uri:
        return cfg.tracking_uri
    return SQLITE_PREFIX + str(Path.cwd().resolve() / STORE_DIR / "mlflow.db")


def _local_sqlite_file(uri: str) -> Path | None:
    """The database file of a local ``sqlite:///`` URI (None for any other store)."""
    if not uri.startswith(SQLITE_PREFIX) or uri == SQLITE_PREFIX + ":memory:":
        return None
    return Path(uri[len(SQLITE_PREFIX) :]).resolve()


def flatten(tree: Any, prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """The leaves of nested dicts as ``{"a<sep>b": leaf}``."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{sep}{key}" if prefix else str(key), sep))
    return flat


def config_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as MLflow params: ``trainer.epochs`` -> ``"1"``, lists as JSON."""
    container = OmegaConf.to_container(cfg, resolve=True)
    return {
        key: (value if isinstance(value, str) else json.dumps(value))[:MAX_PARAM_LENGTH]
        for key, value in flatten(container).items()
    }


def summary_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a summary file as ``final/<path>`` metrics (lists skipped)."""
    return {
        f"final/{key}": float(value)
        for key, value in flatten(summary, sep="/").items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


@dataclass(frozen=True)
class MlflowRun:
    """An open MLflow run and the client of its store."""

    client: MlflowClient
    run_id: str
    #: the sweep's parent run, whose end time follows its last job
    sweep_parent: str | None = None

    def log_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        """Log one epoch's Keras logs (``loss``, ``val_loss``, ...) at step ``epoch``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, epoch)
            for key, value in logs.items()
            if isinstance(value, int | float) and math.isfinite(value)
        ]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, folder: Path, summary_file: str, status: str) -> None:
        """Log the summary's numbers and the folder's files, then end the run as ``status``."""
        from mlflow.entities import Metric

        summary_path = folder / summary_file
        if summary_path.is_file():
            now = int(time.time() * 1000)
            summary = json.loads(summary_path.read_text())
            metrics = [Metric(k, v, now, 0) for k, v in summary_metrics(summary).items()]
            self.client.log_batch(self.run_id, metrics=metrics)
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue  # Hydra's .hydra/ (config.yaml is logged resolved)
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
            elif not (path / "config.yaml").is_file():  # a nested run logs its own folder
                self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        self.client.set_terminated(self.run_id, status)
        if self.sweep_parent is not None:
            self.client.set_terminated(self.sweep_parent, "FINISHED")


@contextlib.contextmanager
def _sweep_lock(sweep_dir: Path | None) -> Iterator[None]:
    """Serialise the jobs of one sweep while they find or create shared MLflow entities."""
    if sweep_dir is None:
        yield
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with (sweep_dir / ".mlflow.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created if new (artifacts beside a local SQLite file)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    database = _local_sqlite_file(uri)
    location = (database.parent / "artifacts").as_uri() if database else None
    return client.create_experiment(name, artifact_location=location)


def _sweep_parent(client: MlflowClient, experiment_id: str, sweep_dir: Path) -> str:
    """The id of the parent run of the sweep in ``sweep_dir``, created by its first job."""
    quoted = str(sweep_dir).replace("'", "\\'")
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SWEEP_TAG}` = '{quoted}' and tags.`{ROLE_TAG}` = 'sweep'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    name = "/".join(sweep_dir.parts[-3:])
    tags = {SWEEP_TAG: str(sweep_dir), ROLE_TAG: "sweep"}
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def _multirun_context() -> tuple[Path | None, str | None]:
    """(sweep folder, run name "<job number> <overrides>") of a Hydra multirun job, else Nones."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None, None
    hydra = HydraConfig.get()
    name = f"{hydra.job.num} {hydra.job.override_dirname}".strip()
    return Path(hydra.sweep.dir).resolve(), name[:MAX_RUN_NAME_LENGTH]


def _open_run(cfg: DictConfig, folder: Path) -> MlflowRun:
    """Create the MLflow run of ``folder``, nested as the module docstring says."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    uri = tracking_uri(cfg.logger)
    database = _local_sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    outer = _current.get()
    sweep_dir, job_name = (None, None) if outer is not None else _multirun_context()
    with _sweep_lock(sweep_dir):  # parallel jobs must not create the same entity twice
        experiment_id = _experiment_id(client, cfg.logger.experiment_name, uri)
        sweep_parent = _sweep_parent(client, experiment_id, sweep_dir) if sweep_dir else None
    tags = {"mammo.run_dir": str(folder.resolve())}
    parent = outer.run_id if outer is not None else sweep_parent
    if parent is not None:
        tags[PARENT_TAG] = parent
    if sweep_dir is not None:
        tags[SWEEP_TAG] = str(sweep_dir)
    run_name = job_name or folder.name
    run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
    params = [Param(key, value) for key, value in config_params(cfg).items()]
    client.log_batch(run_id, params=params)
    return MlflowRun(client, run_id, sweep_parent)


@contextlib.contextmanager
def tracked_run(cfg: DictConfig, folder: Path, summary_file: str) -> Iterator[MlflowRun | None]:
    """Open the MLflow run of ``folder`` when ``cfg`` selects ``logger=mlflow``; else nothing.

    On success the run ends FINISHED with ``summary_file``'s numbers and the folder's
    files; on an exception it ends FAILED (KILLED on Ctrl-C) with tag ``mammo.error``.
    """
    if OmegaConf.select(cfg, "logger.name") != "mlflow":
        yield None
        return
    run = _open_run(cfg, folder)
    token = _current.set(run)
    try:
        yield run
    except BaseException as exc:
        _current.reset(token)
        run.client.set_tag(run.run_id, "mammo.error", f"{type(exc).__name__}: {exc}"[:5000])
        run.close(
            folder, summary_file, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        )
        raise
    _current.reset(token)
    run.close(folder, summary_file, "FINISHED")


def current_run() -> MlflowRun:
    """The innermost run opened by :func:`tracked_run` (the per-epoch logger writes to it)."""
    run = _current.get()
    if run is None:
        raise RuntimeError("logger=mlflow needs an open MLflow run: train inside tracked_run()")
    return run
