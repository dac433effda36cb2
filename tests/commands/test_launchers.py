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


def test_submitit_sweep_runs_each_job_in_its_own_process_and_reports_them(tiny_course, tmp_path):
    """The cluster path (hydra/launcher=slurm) without a cluster: the same submitit
    launcher with its local executor, which pickles the job like sbatch does and runs
    each job in a fresh process."""
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher",
        reason="the submitit launcher is not installed (pip install mammo-cli[launchers])",
    )
    result = run_mammo(
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "+hydra.job.env_set.MAMMO_TF_THREADS=1",  # two jobs at once on the CPU
        "model.hidden_units=8,16",
        f"data.dir={tiny_course}",
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # both jobs land in the one sweep folder the submitting process named
    (sweep,) = (tmp_path / "outputs" / "train-multirun").glob("*/*")
    runs = run_folders(sweep)
    assert [run.name for run in runs] == ["0", "1"]
    job_ids = set()
    for run, hidden_units in zip(runs, (8, 16), strict=True):
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["epochs_run"] == 1 and 0.0 <= metrics["auc"] <= 1.0
        assert (run / "model.keras").is_file()
        config = OmegaConf.load(run / "config.yaml")
        assert config.model.hidden_units == hidden_units and config.trainer.threads == 1
        hydra = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra
        assert hydra.launcher._target_.endswith("submitit_launcher.LocalLauncher")
        job_ids.add(str(hydra.job.id))  # submitit's job id (locally: the job's process id)
    assert len(job_ids) == 2  # one process per job
    # submitit's own logs: <sweep dir>/.submitit/<job id>/
    assert job_ids <= {folder.name for folder in (sweep / ".submitit").iterdir()}

    result = run_mammo("report", str(sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO((sweep / "report.csv").read_text())))
    assert [(row["run"], row["model.hidden_units"], row["status"]) for row in rows] == [
        ("0", "8", "ok"),
        ("1", "16", "ok"),
    ]


def test_slurm_launcher_keys_are_the_installed_plugins(tmp_path):
    """conf/hydra/launcher/slurm.yaml composes onto the plugin's typed config (which
    refuses unknown keys), so every key it ships and documents reaches sbatch."""
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher",
        reason="the submitit launcher is not installed (pip install mammo-cli[launchers])",
    )
    overrides = (
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=1",
        "hydra.launcher.array_parallelism=4",
        "hydra.launcher.account=myproject",
        "+hydra.launcher.additional_parameters.nodelist=gpu01",
    )
    result = run_mammo("train", *overrides, "--cfg", "hydra", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hydra = OmegaConf.to_container(OmegaConf.create(result.stdout).hydra)  # unresolved
    launcher = hydra["launcher"]
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert {key: launcher[key] for key in ("partition", "gpus_per_node", "array_parallelism")} == {
        "partition": "gpu",
        "gpus_per_node": 1,
        "array_parallelism": 4,
    }
    assert (launcher["cpus_per_task"], launcher["mem_gb"], launcher["timeout_min"]) == (8, 32, 240)
    assert launcher["account"] == "myproject"
    assert launcher["additional_parameters"] == {"nodelist": "gpu01"}
    assert launcher["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"
    assert hydra["job"]["env_set"]["MAMMO_TF_THREADS"] == "${hydra.launcher.cpus_per_task}"

    typo = run_mammo("train", "hydra/launcher=slurm", "hydra.launcher.gpus=1", cwd=tmp_path)
    assert typo.returncode == 2 and "gpus" in typo.stderr
