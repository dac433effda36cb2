"""Sweeps through Hydra's joblib launcher and Optuna sweeper, then `mammo report` on them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from omegaconf import OmegaConf

from mammo_cli.config import cpus_per_job
from tests.helpers import run_folders, run_mammo

TINY = ("trainer.epochs=1", "trainer.progress=false")


def run_sweep(tiny_course, cwd):
    """A 2x2 sweep run two jobs at a time by hydra/launcher=local_parallel."""
    result = run_mammo(
        "train",
        "-m",
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
        "model.hidden_units=8,16",
        "trainer.batch_size=16,32",
        f"data.dir={tiny_course}",
        *TINY,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    (sweep,) = (cwd / "outputs" / "train-multirun").glob("*/*")
    return sweep


def test_joblib_sweep_shares_the_cpu_and_reports_one_row_per_run(tiny_course, tmp_path):
    # one test, not a shared fixture: pytest-xdist would run a module fixture once per worker
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    parallel_sweep = run_sweep(tiny_course, tmp_path)
    hydra = OmegaConf.load(parallel_sweep / "0" / ".hydra" / "hydra.yaml").hydra
    assert hydra.launcher._target_.endswith("JoblibLauncher") and hydra.launcher.n_jobs == 2
    runs = run_folders(parallel_sweep)
    assert [run.name for run in runs] == ["0", "1", "2", "3"]
    threads = cpus_per_job(2)
    for run in runs:
        assert (run / "metrics.json").is_file()
        assert OmegaConf.load(run / "config.yaml").trainer.threads == threads
        log = (run / "train.log").read_text()
        assert f"TensorFlow threads: intra-op {threads}, inter-op {threads}" in log

    # mammo report: one row per run with the swept values (study table 1's layout)
    result = run_mammo("report", str(parallel_sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO((parallel_sweep / "report.csv").read_text())))
    assert [row["run"] for row in rows] == ["0", "1", "2", "3"]
    assert [(row["model.hidden_units"], row["trainer.batch_size"]) for row in rows] == [
        ("8", "16"),
        ("8", "32"),
        ("16", "16"),
        ("16", "32"),
    ]
    for row in rows:
        metrics = json.loads((parallel_sweep / row["run"] / "metrics.json").read_text())
        assert float(row["auc"]) == metrics["auc"] and row["status"] == "ok"
    markdown = (parallel_sweep / "report.md").read_text().splitlines()
    assert markdown[2].startswith("| Batch size | Hidden units | Test accuracy | Test loss | AUC |")
    assert len([line for line in markdown if line.startswith("| ")]) == 2 + 4  # head, rule


def test_optuna_sweeper_maximises_validation_auc(tiny_course, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    result = run_mammo(
        "train",
        "hparams_search=scratch_optuna",
        "hydra.sweeper.n_trials=2",
        f"data.dir={tiny_course}",
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (sweep,) = (tmp_path / "outputs" / "train-multirun").glob("*/*")
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    runs = run_folders(sweep)
    assert len(runs) == 2
    validation_aucs = [
        json.loads((r / "metrics.json").read_text())["validation"]["auc"] for r in runs
    ]
    assert best.best_value == pytest.approx(max(validation_aucs))
    assert set(best.best_params) >= {"model.hidden_units", "optimizer.learning_rate"}


def test_slurm_launcher_composes_with_the_submitit_plugin(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_mammo(
        "train",
        "--cfg",
        "hydra",
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=4",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    hydra = OmegaConf.create(result.stdout).hydra
    assert hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert hydra.launcher.cpus_per_task == 4 and hydra.launcher.timeout_min == 240
    assert hydra.job.env_set.MAMMO_TF_THREADS == 4  # TensorFlow gets the job's cores
