"""`mammo baseline` through the real CLI on tiny data: the run folder and its contract,
no TensorFlow, repeatability, train's split, both classifiers, pairs, refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from mammo_cli.config import DataConfig
from mammo_cli.data.dataset import load_task_data
from mammo_cli.data.splits import stratified_split
from mammo_cli.evaluation.reports import SCORES
from mammo_cli.models.baseline import fit_baseline, predict_baseline
from mammo_cli.runs.folder import RunFolder
from mammo_cli.runs.scoring import score
from tests.helpers import (
    CONTRACT_KEYS,
    assert_user_error,
    read_metrics,
    run_folders,
    run_mammo,
    run_mammo_probe,
)

BASELINE_FILES = {
    "config.yaml",
    "provenance.json",
    "metrics.json",
    "test_predictions.csv",
    "confusion_matrix.png",
    "roc_curve.png",
}


def baseline_run(cwd: Path, *overrides: str) -> tuple[Path, str]:
    """Run ``mammo baseline <overrides>`` in ``cwd``; its folder and printed output."""
    result = run_mammo("baseline", *overrides, cwd=cwd)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "baseline")
    return run, result.stdout


@pytest.fixture(scope="module")
def logistic_run(tiny_course, tmp_path_factory) -> tuple[Path, str, bool]:
    """``mammo baseline task=2.1`` on the tiny course: folder, output, TensorFlow loaded."""
    cwd = tmp_path_factory.mktemp("baseline")
    result, tensorflow = run_mammo_probe("baseline", "task=2.1", f"data.dir={tiny_course}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "baseline")
    return run, result.stdout, tensorflow


def test_baseline_writes_a_scored_run_folder_without_tensorflow(logistic_run, tiny_course):
    run, stdout, tensorflow = logistic_run
    assert not tensorflow
    files = {path.name for path in run.iterdir()}
    assert files >= BASELINE_FILES
    assert not files & {"model.keras", "history.csv", "curves.png"}  # no model file
    metrics = read_metrics(run)
    assert set(metrics) >= CONTRACT_KEYS | {"validation", "split_seed", "data_dir"}
    assert metrics["task"] == "2.1" and metrics["class_names"] == ["mass", "calcification"]
    assert metrics["baseline_model"] == "logistic" and metrics["epochs_run"] is None
    assert metrics["seed"] == metrics["split_seed"] == 42
    assert metrics["data_dir"] == str(tiny_course)
    assert set(metrics["validation"]) == set(SCORES)
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["wall_time_s"] > 0
    labels = np.load(tiny_course / "train_labels.npy")
    counts = metrics["counts"]
    assert sum(counts["train"].values()) + sum(counts["val"].values()) == int((labels > 0).sum())
    test_labels = np.load(tiny_course / "public_test_labels.npy")
    assert np.sum(metrics["confusion_matrix"]) == int((test_labels > 0).sum())
    with (run / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["course_index"]) for row in rows] == list(np.flatnonzero(test_labels > 0))
    assert "auc" in stdout and "model: not saved" in stdout
    assert RunFolder(run).command == "baseline" and RunFolder(run).is_finished


def test_the_same_seed_gives_identical_results(logistic_run, tiny_course, tmp_path):
    first, _, _ = logistic_run
    again, _ = baseline_run(tmp_path, "task=2.1", f"data.dir={tiny_course}")
    metrics, repeated = read_metrics(first), read_metrics(again)
    for varies in ("wall_time_s", "provenance"):  # run time; start time, mammo's commit
        metrics.pop(varies), repeated.pop(varies)
    assert metrics == repeated
    predictions = (run / "test_predictions.csv" for run in (first, again))
    assert len({path.read_text() for path in predictions}) == 1


def test_the_baseline_is_fitted_and_validated_on_trains_split(logistic_run, tiny_course):
    """Its validation scores are those of a baseline fitted on the training rows of
    ``stratified_split(labels, val_split, seed)``, the call ``mammo train`` makes."""
    run, _, _ = logistic_run
    cfg = RunFolder(run).config()
    train = load_task_data(OmegaConf.structured(DataConfig(dir=str(tiny_course))), cfg.task).train
    train_idx, val_idx = stratified_split(train.labels, 0.15, 42)
    pipeline = fit_baseline(cfg, train.stored_input(), train.labels[train_idx], rows=train_idx)
    probs = predict_baseline(pipeline, train.stored_input(), rows=val_idx)
    expected = score(train.labels[val_idx], probs, train.class_names, 1, "softmax")
    assert read_metrics(run)["validation"] == {key: expected[key] for key in SCORES}
    assert read_metrics(run)["counts"]["val"] == train.counts(val_idx)


def test_the_split_counts_are_those_of_a_training_run(logistic_run, tiny_course, tmp_path):
    run, _, _ = logistic_run
    result = run_mammo(
        "train",
        "task=2.1",
        "augmentation=none",
        f"data.dir={tiny_course}",
        "trainer.epochs=1",
        "trainer.batch_size=16",
        "trainer.progress=false",
        "logger=none",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (trained,) = run_folders(tmp_path / "outputs" / "train")
    assert read_metrics(trained)["counts"] == read_metrics(run)["counts"]


def test_random_forest_with_the_recipes_class_weights(tiny_course, tmp_path):
    """Task 3.2's recipe: manual class weights [1.0, 1.25] and a sigmoid VGG16, whose
    output activation the baseline ignores (its probabilities are distributions)."""
    run, stdout = baseline_run(
        tmp_path, "task=3.2", "baseline.model=random_forest", f"data.dir={tiny_course}"
    )
    metrics = read_metrics(run)
    assert metrics["baseline_model"] == "random_forest" and "random_forest" in stdout
    assert metrics["class_weight"] == {"benign": 1.0, "malignant": 1.25}
    assert metrics["class_names"] == ["benign", "malignant"]
    folder = RunFolder(run)
    assert folder.config().model.output_activation == "sigmoid"
    assert folder.output_activation == "softmax"
    np.testing.assert_allclose(folder.test_predictions().probs.sum(axis=1), 1.0)


def test_pairs_task_scores_one_row_per_pair(pair_course, tmp_path):
    run, _ = baseline_run(tmp_path, "task=siamese", f"data.dir={pair_course}")
    metrics = read_metrics(run)
    assert metrics["task"] == "siamese" and metrics["n_features"] == 2 * 97
    assert sum(metrics["counts"]["train"].values()) + sum(metrics["counts"]["val"].values()) == 8
    predictions = RunFolder(run).test_predictions()
    assert len(predictions.labels) == 4  # test pairs
    assert list(predictions.course_index) == [1, 3, 5, 7]  # the abnormalities
    assert list(predictions.units) == [0, 1, 2, 3]  # resampled as pairs


def test_baseline_model_none_is_refused_before_anything_is_written(tmp_path):
    result = run_mammo("baseline", "baseline.model=none", cwd=tmp_path)
    assert_user_error(result, "baseline.model=none", "logistic, random_forest")
    assert not (tmp_path / "outputs").exists()
