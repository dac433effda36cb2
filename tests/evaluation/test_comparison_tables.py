"""Holdout and comparison tables, holdout summaries and `mammo report` on hand-made runs.

No TensorFlow here: the run folders are written by hand in the shape mammo writes them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mammo_cli.config import cpus_per_job
from mammo_cli.evaluation.reports import (
    RunRow,
    comparison_csv,
    comparison_table,
    ordinal,
    score_summary,
)
from mammo_cli.runs.holdout import holdout_report, split_seed, summarize
from tests.helpers import assert_user_error, run_mammo

SCORES = {"accuracy": 0.8, "loss": 0.4, "auc": 0.85, "f1": 0.75, "f1_macro": 0.78}


def scores(shift: float) -> dict[str, float]:
    return {key: value + shift for key, value in SCORES.items()}


def write_run(folder: Path, overrides: list[str] | None, metrics: dict | None) -> Path:
    """A run folder: .hydra/overrides.yaml (if given), then metrics.json or a failure."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("seed: 42\n")
    if overrides is not None:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    if metrics is None:
        (folder / "status.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    else:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_ordinals_follow_english():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 103)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "103rd",
    ]  # fmt: skip


def test_split_seeds_are_fixed_and_distinct():
    # The documented function: SeedSequence([seed, i]); pinned so that holdouts stay
    # comparable across versions, processes and machines.
    assert split_seed(42, 1) == 3329053876
    seeds = {split_seed(seed, i) for seed in (41, 42, 43) for i in range(1, 5)}
    assert len(seeds) == 12


def test_cpus_per_job_divides_the_cores(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [cpus_per_job(n) for n in (1, 2, 3, 8, 16, -1, -5)] == [8, 4, 2, 1, 1, 1, 2]


def test_holdout_summary_lists_failed_splits_and_averages_the_others():
    cfg = OmegaConf.create(
        {
            "task": {"name": "2.2"},
            "seed": 42,
            "holdout": {"k": 3},
            "trainer": {"batch_size": 50},
            "model": {"hidden_units": 64},
        }
    )
    runs = [
        {"split": 1, **scores(0.0), "validation": scores(0.0)},
        {"split": 3, **scores(0.1), "validation": scores(0.2)},
    ]
    failed = [{"split": 2, "split_seed": split_seed(42, 2), "run_dir": "split_2", "error": "E: x"}]
    result = summarize(cfg, runs, failed)
    assert result["failed"] == failed and len(result["runs"]) == 2
    assert result["split_seeds"] == [split_seed(42, i) for i in (1, 2, 3)]
    assert result["mean"]["auc"] == pytest.approx(0.9)
    assert result["std"]["auc"] == pytest.approx(0.05)
    assert result["validation_mean"]["auc"] == pytest.approx(0.95)
    table = holdout_report(cfg, result)
    assert table.headers == [
        "Batch size", "Hidden units", "Measure", "1st", "2nd", "3rd", "AVG", "STD",
    ]  # fmt: skip
    assert table.rows[0] == ["50", "64", "accuracy", "0.80", "failed", "0.90", "0.85", "0.05"]
    assert [row[2] for row in table.rows] == ["accuracy", "loss", "AUC", "F-score", "F1 macro"]
    markdown = table.to_markdown()
    assert "| 50 | 64 | accuracy | 0.80 | failed | 0.90 | 0.85 | 0.05 |" in markdown
    assert "split 2 failed: E: x" in markdown


def test_score_summary_is_mean_and_population_std():
    mean, std = score_summary([scores(0.0), scores(0.2)])
    assert mean["loss"] == pytest.approx(0.5) and std["loss"] == pytest.approx(0.1)


def test_comparison_shows_only_overrides_that_differ_in_study_order():
    def swept(units: str, batch: str) -> dict[str, str]:
        return {"task": "2.1", "model.hidden_units": units, "trainer.batch_size": batch}

    rows = [
        RunRow("0", swept("64", "25"), SCORES),
        RunRow("1", swept("64", "50"), SCORES),
        RunRow("2", swept("128", "25"), None, "failed"),
    ]
    table = comparison_table(rows, "t")
    # study table 1's columns, in its order
    assert table.headers[:6] == [
        "Batch size", "Hidden units", "Test accuracy", "Test loss", "AUC", "F-score",
    ]  # fmt: skip
    assert table.rows[0][:6] == ["25", "64", "0.80", "0.40", "0.85", "0.75"]
    assert table.rows[2][2] == "failed" and table.rows[2][-1] == "2"
    assert table.notes == ["1 of 3 runs failed: 2"]
    parsed = list(csv.DictReader(io.StringIO(comparison_csv(rows))))
    assert [r["trainer.batch_size"] for r in parsed] == ["25", "50", "25"]
    assert float(parsed[0]["auc"]) == 0.85 and parsed[2]["auc"] == ""
    assert [r["status"] for r in parsed] == ["ok", "ok", "failed"]


def test_report_reads_a_folder_of_runs(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (model, weights) in enumerate(
        [("vgg16", "none"), ("vgg16", "manual"), ("vgg19", "none"), ("vgg19", "manual")]
        * 3  # 12 jobs: job 10 must sort after job 9
    ):
        overrides = ["experiment=table7_fe_weights", f"model={model}", f"class_weights={weights}"]
        write_run(sweep / str(job), overrides, scores(job / 100))
    # a holdout inside: its splits take the overrides of the holdout folder above them
    write_run(sweep / "12" / "split_1", None, scores(0.5))
    (sweep / "12" / ".hydra").mkdir()
    (sweep / "12" / ".hydra" / "overrides.yaml").write_text("- model=vgg16\n- \"task='2.2'\"\n")
    write_run(sweep / "13", ["model=vgg19"], None)

    result = run_mammo("report", str(sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = list(csv.DictReader(io.StringIO((sweep / "report.csv").read_text())))
    assert [r["run"] for r in parsed] == [*map(str, range(12)), "12/split_1", "13"]
    assert list(parsed[0])[:6] == ["run", "kind", "task", "model", "class_weights", "experiment"]
    assert parsed[11]["model"] == "vgg19" and parsed[11]["class_weights"] == "manual"
    assert parsed[12]["task"] == "2.2" and parsed[12]["class_weights"] == ""
    assert float(parsed[10]["accuracy"]) == pytest.approx(0.9)
    assert parsed[13]["status"] == "failed"
    markdown = (sweep / "report.md").read_text()
    assert "| Task | Model | Class weights | experiment | Test accuracy |" in markdown
    assert "vgg19" in result.stdout and "report.csv" in result.stdout  # the rich table


def test_report_refuses_a_folder_without_runs(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert_user_error(run_mammo("report", str(tmp_path / "empty"), cwd=tmp_path), "no runs")
    assert not (tmp_path / "empty" / "report.md").exists()
    assert_user_error(run_mammo("report", str(tmp_path / "nope"), cwd=tmp_path), "not a folder")
    assert_user_error(run_mammo("report", cwd=tmp_path), "expected one folder")
