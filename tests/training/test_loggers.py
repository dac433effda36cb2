"""The ``logger`` group end to end: real TensorFlow and MLflow stores, tiny data, 1 epoch."""

from __future__ import annotations

import csv

import pytest
from omegaconf import OmegaConf

from mammo_cli.training.tracking import (
    PARENT_TAG,
    SWEEP_TAG,
    config_params,
    summary_metrics,
    tracked_run,
)
from tests.helpers import assert_user_error, read_metrics, run_folders, run_mammo

TINY = ("trainer.epochs=1", "trainer.batch_size=16", "trainer.progress=false")


def _client(store):
    mlflow = pytest.importorskip("mlflow", reason="the mlflow tests need mammo-cli[mlflow]")
    return mlflow.MlflowClient(tracking_uri=store)


def _runs(client, experiment):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, experiment
    return {run.info.run_name: run for run in client.search_runs([found.experiment_id])}


def test_each_logger_in_a_sweep(tiny_course, tmp_path):
    """One 1-epoch job per logger; the MLflow job is read back through MLflow's client API."""
    pytest.importorskip("mlflow", reason="the mlflow tests need mammo-cli[mlflow]")
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = run_mammo(
        "train",
        "-m",
        "logger=mlflow,tensorboard,csv,none",
        f"logger.tracking_uri={store}",
        f"data.dir={tiny_course}",
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    by_logger = {
        OmegaConf.load(run / "config.yaml").logger.name: run
        for run in run_folders(tmp_path / "outputs" / "train-multirun")
    }
    events = list((by_logger["tensorboard"] / "tensorboard").rglob("events.out.tfevents.*"))
    assert {path.parent.name for path in events} == {"train", "validation"}
    with (by_logger["csv"] / "epochs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and {"epoch", "loss", "val_loss"} <= set(rows[0])
    for logger in ("csv", "none", "mlflow"):
        assert not (by_logger[logger] / "tensorboard").exists()
    assert not (by_logger["none"] / "epochs.csv").exists()
    assert not (tmp_path / "mlruns").exists()  # the store given, not the default

    client = _client(store)
    runs = _runs(client, "mammo task 2.1")
    (sweep,) = (run for run in runs.values() if run.data.tags.get("mammo.role") == "sweep")
    (run,) = (run for run in runs.values() if run is not sweep)  # only one job logs to MLflow
    (sweep_dir,) = (tmp_path / "outputs" / "train-multirun").glob("*/*")
    assert sweep.data.tags[SWEEP_TAG] == run.data.tags[SWEEP_TAG] == str(sweep_dir.resolve())
    assert run.data.tags[PARENT_TAG] == sweep.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("0 ")
    params = run.data.params
    assert params["trainer.epochs"] == "1" and params["task.name"] == "2.1"
    assert params["logger.tracking_uri"] == store and params["model.hidden_units"] == "64"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1]
    assert {"val_loss", "accuracy", "val_accuracy"} <= set(run.data.metrics)
    metrics = read_metrics(by_logger["mlflow"])
    assert run.data.metrics["final/accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.metrics["final/validation/auc"] == pytest.approx(metrics["validation"]["auc"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.yaml", "model.keras", "history.csv"} <= artifacts
    assert (tmp_path / "store" / "artifacts").is_dir()  # artifacts beside the database


def test_nested_runs_in_the_default_store(tmp_path, monkeypatch):
    """A holdout's shape: a parent run, nested runs per split folder, a failed split."""
    pytest.importorskip("mlflow", reason="the mlflow tests need mammo-cli[mlflow]")
    monkeypatch.chdir(tmp_path)
    cfg = OmegaConf.create({"logger": {"name": "mlflow", "experiment_name": "nested"}})
    cfg.logger.tracking_uri = None
    root = tmp_path / "holdout"
    for name in ("split_1", "split_2"):
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text("{}")
    with tracked_run(cfg, root, "holdout.json") as parent:
        with tracked_run(cfg, root / "split_1", "metrics.json"):
            (root / "split_1" / "metrics.json").write_text('{"accuracy": 0.5}')
        with pytest.raises(ValueError), tracked_run(cfg, root / "split_2", "metrics.json"):
            raise ValueError("split 2 broke")
        (root / "holdout.json").write_text('{"mean": {"auc": 0.75}, "runs": []}')
    client = _client(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = _runs(client, "nested")
    assert runs["holdout"].info.run_id == parent.run_id
    assert runs["holdout"].data.metrics == {"final/mean/auc": 0.75}
    assert {a.path for a in client.list_artifacts(parent.run_id)} == {"holdout.json"}
    assert runs["split_1"].data.tags[PARENT_TAG] == parent.run_id
    assert runs["split_1"].data.metrics == {"final/accuracy": 0.5}
    assert runs["split_2"].info.status == "FAILED"
    assert runs["split_2"].data.tags["mammo.error"] == "ValueError: split 2 broke"


def test_mlflow_selected_but_missing_fails_before_training(tiny_course, tmp_path):
    shim = tmp_path / "no_mlflow"
    shim.mkdir()
    (shim / "mlflow.py").write_text("raise ImportError(\"No module named 'mlflow'\")\n")
    result = run_mammo(
        "train",
        "logger=mlflow",
        f"data.dir={tiny_course}",
        *TINY,
        cwd=tmp_path,
        env={"PYTHONPATH": str(shim)},
    )
    assert_user_error(result, "logger=mlflow needs MLflow: pip install 'mammo-cli[mlflow]'")
    assert run_folders(tmp_path / "outputs") == []  # refused before the run folder is used


def test_unknown_logger_name_is_refused(tmp_path):
    result = run_mammo("train", "logger.name=wandb", cwd=tmp_path)
    assert_user_error(result, "wandb", "tensorboard, csv, mlflow, none")


def test_params_and_final_metrics_flatten_nested_values():
    cfg = OmegaConf.create({"task": {"classes": {"mass": [1, 2]}, "name": "2.1"}, "seed": 42})
    assert config_params(cfg) == {"task.classes.mass": "[1, 2]", "task.name": "2.1", "seed": "42"}
    summary = {"auc": 0.5, "validation": {"auc": 0.75}, "matrix": [[1]], "ok": True, "x": None}
    assert summary_metrics(summary) == {"final/auc": 0.5, "final/validation/auc": 0.75}
