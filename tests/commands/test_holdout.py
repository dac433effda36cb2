"""`mammo holdout` end to end: real TensorFlow, tiny data, 2 splits of 1 epoch."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from mammo_cli.config import TrainConfig
from mammo_cli.evaluation.reports import SCORES
from mammo_cli.runs.holdout import split_seed
from tests.helpers import read_metrics, run_folders, run_mammo

HOLDOUT_ARGS = (
    "holdout.k=2",
    "trainer.epochs=1",
    "trainer.batch_size=16",
    "trainer.progress=false",
)


def holdout(tiny_course, cwd):
    cwd.mkdir()
    result = run_mammo("holdout", "task=2.1", f"data.dir={tiny_course}", *HOLDOUT_ARGS, cwd=cwd)
    assert result.returncode == 0, result.stderr
    (root,) = (cwd / "outputs" / "holdout").glob("*/*")
    return root, result


def check_holdout_folder(root, stdout):
    """holdout.json's mean/std are those of its runs; each split is a complete run folder."""
    summary = json.loads((root / "holdout.json").read_text())
    assert [run["split"] for run in summary["runs"]] == [1, 2] and summary["failed"] == []
    for key in SCORES:
        values = [run[key] for run in summary["runs"]]
        assert summary["mean"][key] == pytest.approx(sum(values) / 2)
        assert summary["std"][key] == pytest.approx(abs(values[0] - values[1]) / 2)
    assert summary["split_seeds"] == [split_seed(42, 1), split_seed(42, 2)]
    assert [p.name for p in run_folders(root)] == [root.name, "split_1", "split_2"]
    for run in summary["runs"]:
        folder = root / run["run_dir"]
        assert {"config.yaml", "metrics.json", "model.keras", "history.csv"} <= {
            p.name for p in folder.iterdir()
        }
        assert read_metrics(folder)["auc"] == run["auc"]
        assert run["split_seed"] == split_seed(42, run["split"])
        # what `mammo evaluate run=<split folder>` reads back: a train config
        saved = OmegaConf.load(folder / "config.yaml")
        assert "holdout" not in saved
        assert OmegaConf.merge(OmegaConf.structured(TrainConfig), saved).trainer.epochs == 1
    markdown = (root / "holdout.md").read_text()
    assert "| Batch size | Hidden units | Measure | 1st | 2nd | AVG | STD |" in markdown
    assert "AVG" in stdout and "2nd" in stdout
    return summary


def test_two_fold_holdout_writes_its_mean_and_repeats_in_another_process(tiny_course, tmp_path):
    # one test, not a shared fixture: pytest-xdist would run a module fixture once per worker
    first_root, first_result = holdout(tiny_course, tmp_path / "first")
    first = check_holdout_folder(first_root, first_result.stdout)
    second_root, _ = holdout(tiny_course, tmp_path / "second")
    second = json.loads((second_root / "holdout.json").read_text())
    assert first["split_seeds"] == second["split_seeds"]
    for a, b in zip(first["runs"], second["runs"], strict=True):
        for key in (*SCORES, "counts", "confusion_matrix", "validation"):
            assert a[key] == b[key], key
    assert first["mean"] == second["mean"] and first["std"] == second["std"]


def test_holdout_needs_two_splits(tiny_course, tmp_path):
    result = run_mammo("holdout", "holdout.k=1", f"data.dir={tiny_course}", cwd=tmp_path)
    assert result.returncode == 2 and "holdout.k=1" in result.stderr
