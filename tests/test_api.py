"""The Python API (mammo_cli.train, ...): the same configs, command code and run folders
as the CLI, MammoError for bad input, quiet unless asked, no TensorFlow on import."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import mammo_cli
from mammo_cli.errors import MammoError
from tests.conftest import ENSEMBLE_WEIGHTS
from tests.helpers import read_metrics, run_mammo

#: the overrides both the CLI and the API runs use (the API's progress=False is the last)
TRAIN = {"task": "2.1", "trainer.epochs": 1, "trainer.batch_size": 16, "logger": "none"}
CLI_TRAIN = (
    "task=2.1",
    "trainer.epochs=1",
    "trainer.batch_size=16",
    "logger=none",
    "trainer.progress=false",
)
#: metrics.json keys that differ between two runs of the same config: times, and the
#: provenance facts (which hold the start time)
VARYING = {"wall_time_s", "seconds_per_epoch", "provenance"}


def comparable(metrics: dict, *paths: str) -> dict:
    """metrics.json without what two runs of one config may not share (``paths``: keys
    holding a run folder)."""
    return {k: v for k, v in metrics.items() if k not in VARYING and k not in paths}


def config_without(folder: Path, *keys: str) -> dict:
    config = yaml.safe_load((folder / "config.yaml").read_text())
    return {k: v for k, v in config.items() if k not in keys}


def files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """The working directory and mammo's cache in ``tmp_path``, as ``run_mammo`` has them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAMMO_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_import_mammo_cli_is_light():
    """``import mammo_cli`` loads neither Hydra nor TensorFlow; ``mammo_cli.train`` loads
    the API, still without TensorFlow."""
    code = (
        "import sys, mammo_cli\n"
        "heavy = lambda: sorted({m.split('.')[0] for m in sys.modules} & "
        "{'tensorflow', 'keras', 'hydra'})\n"
        "print(heavy())\n"
        "mammo_cli.train, mammo_cli.load_run\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "False False"]


def test_train_load_evaluate_compare_write_what_the_cli_writes(tiny_course, in_tmp, capsys, caplog):
    """train -> load_run -> evaluate -> compare through the API only: the same files,
    metrics and configs as the CLI with the same seed and overrides; nothing printed,
    the root logger untouched."""
    cli = in_tmp / "cli"
    for args in (
        ("train", *CLI_TRAIN, f"data.dir={tiny_course}", f"hydra.run.dir={cli / 'train'}"),
        ("evaluate", f"run={cli / 'train'}", f"hydra.run.dir={cli / 'evaluate'}"),
        ("compare", str(cli / "train"), str(cli / "evaluate"), f"hydra.run.dir={cli / 'cmp'}"),
    ):
        result = run_mammo(*args, cwd=in_tmp)
        assert result.returncode == 0, result.stderr

    loggers = [logging.getLogger(), logging.getLogger("mammo_cli")]
    before = [(list(log.handlers), log.level, log.propagate) for log in loggers]
    api = in_tmp / "api"
    trained = mammo_cli.train(data_dir=tiny_course, overrides={**TRAIN}, run_dir=api / "train")
    run = mammo_cli.load_run(trained.path)
    evaluated = mammo_cli.evaluate(run, run_dir=api / "evaluate")
    payload = mammo_cli.compare(run, evaluated, run_dir=api / "cmp")
    assert capsys.readouterr().out == ""
    assert [(list(log.handlers), log.level, log.propagate) for log in loggers] == before
    # mammo's INFO lines went to the run's log file, not to the application's handlers
    assert not [r for r in caplog.records if r.name.startswith("mammo_cli")]

    for name in ("train", "evaluate", "cmp"):
        assert files(api / name) == files(cli / name), name
    assert comparable(run.metrics) == comparable(read_metrics(cli / "train"))
    assert comparable(evaluated.metrics, "source_run") == comparable(
        read_metrics(cli / "evaluate"), "source_run"
    )
    assert config_without(api / "train") == config_without(cli / "train")
    assert config_without(api / "evaluate", "run") == config_without(cli / "evaluate", "run")
    expected = json.loads((cli / "cmp" / "compare.json").read_text())
    assert {k: v for k, v in payload.items() if k not in ("run_a", "run_b")} == {
        k: v for k, v in expected.items() if k not in ("run_a", "run_b")
    }
    assert (payload["run_a"], payload["run_b"]) == (str(run.path), str(evaluated.path))

    # the Run of a notebook user: its test predictions, plots, model and provenance
    predictions = run.test_predictions
    csv_rows = (run.path / "test_predictions.csv").read_text().splitlines()[1:]
    assert [predictions.class_names[i] for i in predictions.predicted] == [
        row.split(",")[-1] for row in csv_rows
    ]
    assert set(run.plots) == {"curves", "confusion_matrix", "roc_curve", "calibration"}
    assert run.load_model().output_shape == (None, 2)
    assert run.provenance["argv"][0] == "mammo_cli.train"
    assert "data.dir=" in " ".join(run.provenance["overrides"])
    assert run.warnings == read_metrics(cli / "train")["warnings"]
    assert f"auc {run.metrics['auc']:.3f} [" in repr(run)
    # the CLI's log line, in the API run's log file; the overrides for `mammo report`
    assert "validation metrics:" in (api / "train" / "train.log").read_text()
    overrides = yaml.safe_load((api / "train" / ".hydra" / "overrides.yaml").read_text())
    assert "trainer.epochs=1" in overrides and "trainer.progress=false" in overrides


def test_baseline_and_ensemble_write_what_the_cli_writes(
    tiny_course, members, ensemble_run, in_tmp, capsys
):
    cli = in_tmp / "baseline"
    result = run_mammo(
        "baseline", *CLI_TRAIN, f"data.dir={tiny_course}", f"hydra.run.dir={cli}", cwd=in_tmp
    )
    assert result.returncode == 0, result.stderr
    fitted = mammo_cli.baseline(
        data_dir=tiny_course,
        overrides={**TRAIN, "trainer.progress": False},
        run_dir=in_tmp / "api_baseline",
    )
    assert files(fitted.path) == files(cli)
    assert comparable(fitted.metrics) == comparable(read_metrics(cli))

    runs = [members["2.1", "softmax"], members["2.1", "sigmoid"]]
    averaged = mammo_cli.ensemble(runs, weights=ENSEMBLE_WEIGHTS)
    folder, _ = ensemble_run
    assert averaged.path.parents[1] == in_tmp / "outputs" / "ensemble"
    assert files(averaged.path) == files(folder)
    assert comparable(averaged.metrics) == comparable(read_metrics(folder))
    assert capsys.readouterr().out == ""


def test_holdout_returns_its_splits_and_reports_only_when_verbose(tiny_course, in_tmp, capsys):
    overrides = {k: v for k, v in TRAIN.items() if k != "task"}
    result = mammo_cli.holdout(
        task=2.1, data_dir=tiny_course, k=2, overrides=overrides, run_dir=in_tmp / "quiet"
    )
    assert capsys.readouterr().out == ""
    assert [split.path.name for split in result.splits] == ["split_1", "split_2"]
    assert result.metrics["k"] == 2 and len(result.metrics["runs"]) == 2
    assert "holdout split 2/2" in (in_tmp / "quiet" / "holdout.log").read_text()
    assert "pooled test predictions: accuracy" in repr(result)
    assert isinstance(mammo_cli.load_run(result.path), mammo_cli.Holdout)

    mammo_cli.compare(result.splits[0], result.splits[1], verbose=True)
    shown = capsys.readouterr().out
    assert "mammo compare: auc (n = 16)" in shown and "run folder:" in shown


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: mammo_cli.train(overrides={"trainer.batch_size": 0}), ["trainer.batch_size=0"]),
        (lambda: mammo_cli.train(overrides=["trainer.epoch=3"]), ["did you mean trainer.epochs"]),
        (lambda: mammo_cli.train(task="9"), ["task/9"]),
        (
            lambda: mammo_cli.train(overrides={"trainer.epochs": "1,2"}),
            ["could not be converted to Integer"],
        ),
        (lambda: mammo_cli.train(overrides=["trainer.epochs=1,2"]), ["is a sweep"]),
        (lambda: mammo_cli.train(task="2.1", overrides={"task": "2.2"}), ["task is set twice"]),
        (lambda: mammo_cli.train(overrides={"seed": object()}), ["seed="]),
        (lambda: mammo_cli.train(overrides="trainer.epochs=1"), ["give a dict or a list"]),
        (lambda: mammo_cli.evaluate("no/such/run"), ["is not a folder"]),
        (lambda: mammo_cli.load_run("."), ["not a folder written by mammo"]),
    ],
)
def test_bad_input_is_a_mammo_error_and_writes_nothing(call, fragments, in_tmp):
    with pytest.raises(MammoError) as refused:
        call()
    for fragment in fragments:
        assert fragment in str(refused.value)
    assert list(in_tmp.iterdir()) == []


def test_debug_fast_checks_a_config_in_one_quick_epoch_on_a_subset(tiny_course, in_tmp):
    """debug=fast (data.limit lowered to reach the tiny set): one epoch on the limited
    task view, 200 resamples, no baseline, logger or progress; under outputs/debug/."""
    result = run_mammo(
        "train", "task=2.1", "debug=fast", f"data.dir={tiny_course}", "data.limit=12", cwd=in_tmp
    )
    assert result.returncode == 0, result.stderr
    (folder,) = (in_tmp / "outputs" / "debug" / "train").glob("*/*")
    metrics = read_metrics(folder)
    counts = metrics["counts"]
    assert sum(counts["train"].values()) + sum(counts["val"].values()) == 12
    assert sum(counts["test"].values()) == 12 and min(counts["test"].values()) >= 1
    assert metrics["epochs_run"] == 1 and metrics["baseline"] is None
    assert metrics["bootstrap"]["resamples"] == 200
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["logger"]["name"] == "none" and config["trainer"]["progress"] is False
    assert not (folder / "tensorboard").exists()
    # 12 of the 16 test abnormalities (odd course indices), each once
    patches = np.asarray(mammo_cli.load_run(folder).test_predictions.course_index)
    assert len(np.unique(patches)) == 12 and (patches % 2 == 1).all()
