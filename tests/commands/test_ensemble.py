"""`mammo ensemble` end to end: two tiny trained runs (softmax + sigmoid), weighted average.

The fixtures ``members`` and ``ensemble_run`` (once per session) are in tests/conftest.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from mammo_cli.data.dataset import load_task_data
from mammo_cli.evaluation.metrics import classification_metrics
from mammo_cli.models.ensemble import normalised_weights
from mammo_cli.runs.folder import RunFolder
from tests.helpers import CONTRACT_KEYS, assert_user_error, read_metrics, run_folders, run_mammo

SCORE_KEYS = CONTRACT_KEYS - {"counts", "wall_time_s"}


def member_probabilities(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A member's own test-set predictions (keras, safe mode), its inputs and labels."""
    cfg = RunFolder(run).config()
    test = load_task_data(cfg.data, cfg.task, with_train=False).test
    model = keras.models.load_model(run / "model.keras", safe_mode=True, compile=False)
    images = test.model_input()
    return np.asarray(model.predict(images, verbose=0), np.float64), images, test.labels


def test_ensemble_probabilities_are_the_weighted_mean_of_the_members(members, ensemble_run):
    run, stdout = ensemble_run
    # an ordinary run folder, plus the member table
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "metrics.json",
        "model.keras",
        "test_predictions.csv",
        "members.json",
        "ensemble.md",
        "confusion_matrix.png",
    }
    summary = read_metrics(run)
    assert set(summary) >= CONTRACT_KEYS
    assert summary["class_names"] == ["mass", "calcification"]
    assert summary["weights"] == [0.75, 0.25]
    rows = json.loads((run / "members.json").read_text())["members"]
    assert [row["name"] for row in rows] == ["member_1_scratch", "member_2_scratch"]
    for row in rows:
        assert set(row) >= (SCORE_KEYS - {"class_names"}) | {"name", "run_dir", "weight"}
    # each member row reproduces the member's own metrics.json
    for row, key in zip(rows, (("2.1", "softmax"), ("2.1", "sigmoid")), strict=True):
        assert row["run_dir"] == str(members[key].resolve())
        own = read_metrics(members[key])
        for score in ("accuracy", "auc", "f1", "confusion_matrix"):
            assert row[score] == own[score], score
        assert row["loss"] == pytest.approx(own["loss"], rel=1e-5)

    softmax, images, labels = member_probabilities(members["2.1", "softmax"])
    sigmoid, _, _ = member_probabilities(members["2.1", "sigmoid"])
    sigmoid = sigmoid / sigmoid.sum(axis=1, keepdims=True)  # the documented normalisation
    expected = 0.75 * softmax + 0.25 * sigmoid
    ensemble = keras.models.load_model(run / "model.keras", safe_mode=True, compile=False)
    predicted = np.asarray(ensemble.predict(images, verbose=0), np.float64)
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-6)

    metrics = classification_metrics(labels, expected, summary["class_names"], 1)
    for score in ("accuracy", "confusion_matrix"):
        assert summary[score] == metrics[score], score
    for score in ("auc", "f1", "f1_macro"):
        assert summary[score] == pytest.approx(metrics[score]), score
    onehot = np.eye(2)[labels]
    loss = -np.mean(np.sum(onehot * np.log(np.clip(expected, 1e-7, 1.0)), axis=1))
    assert summary["loss"] == pytest.approx(loss, rel=1e-4)

    markdown = (run / "ensemble.md").read_text()
    assert "| Model | Test accuracy | AUC | F-score | Test loss |" in markdown
    assert "| ensemble |" in markdown
    assert "member_2_scratch" in stdout and "F-score" in stdout


def test_evaluate_reevaluates_a_saved_ensemble(ensemble_run, tmp_path):
    run, _ = ensemble_run
    result = run_mammo("evaluate", f"run={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (eval_run,) = run_folders(tmp_path / "outputs" / "evaluate")
    evaluated = read_metrics(eval_run)
    recorded = read_metrics(run)
    assert set(evaluated) >= CONTRACT_KEYS
    assert evaluated["task"] == "2.1" and evaluated["seed"] == recorded["seed"]
    for key in ("accuracy", "auc", "f1", "f1_macro", "confusion_matrix"):
        assert evaluated[key] == recorded[key], key
    assert evaluated["loss"] == pytest.approx(recorded["loss"], rel=1e-5)


def test_members_of_different_tasks_are_refused(members, tmp_path):
    result = run_mammo(
        "ensemble",
        f"members=[{members['2.1', 'softmax']},{members['2.2', 'sigmoid']}]",
        cwd=tmp_path,
    )
    assert_user_error(result, "different classifications", "mass", "benign")
    assert not (tmp_path / "outputs").exists()  # refused before any folder is made


def test_ensemble_weights_are_normalised_and_checked(members, tmp_path):
    assert normalised_weights(None, 4) == [0.25] * 4
    assert normalised_weights([2, 1, 1], 3) == [0.5, 0.25, 0.25]
    pair = f"members=[{members['2.1', 'softmax']},{members['2.1', 'sigmoid']}]"
    for weights, fragment in (("[1.0]", "one weight per member"), ("[1,-1]", "non-negative")):
        result = run_mammo("ensemble", pair, f"ensemble.weights={weights}", cwd=tmp_path)
        assert_user_error(result, fragment)
    assert not (tmp_path / "outputs").exists()


def test_report_lists_an_ensemble_beside_its_members(members, ensemble_run, tmp_path):
    run, _ = ensemble_run
    folder = tmp_path / "study"
    for name, source in (
        ("scratch_softmax", members["2.1", "softmax"]),
        ("scratch_sigmoid", members["2.1", "sigmoid"]),
        ("ensemble", run),
    ):
        shutil.copytree(source, folder / name)
    result = run_mammo("report", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO((folder / "report.csv").read_text())))
    kinds = {row["run"]: row["kind"] for row in rows}
    assert kinds == {"ensemble": "ensemble", "scratch_sigmoid": "train", "scratch_softmax": "train"}
    assert "| Kind |" in (folder / "report.md").read_text()
