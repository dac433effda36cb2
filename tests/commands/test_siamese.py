"""Baseline patches end to end (study 7, 7.1): the Siamese network and task 4 through
the real CLI (train, evaluate, holdout), with tiny data.

VGG16 with random weights (model.weights=null), one epoch, 8 training and 4 test pairs,
batch 4; the siamese run is trained once per session (fixtures ``pair_course`` and
``siamese_run`` in tests/conftest.py, shared with test_predict).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from mammo_cli.data.course import to_model_input
from mammo_cli.evaluation.metrics import classification_metrics, cross_entropy
from tests.helpers import (
    CONTRACT_KEYS,
    FAST,
    RUN_FILES,
    assert_user_error,
    compose,
    read_metrics,
    run_folders,
    run_mammo,
    write_course,
)


def test_siamese_preset():
    cfg = compose("train", "task=siamese")
    assert cfg.task.pairs and list(cfg.task.classes) == ["mass", "calcification"]
    assert cfg.task.positive_class == 1
    assert cfg.model._target_ == "mammo_cli.models.siamese.build_siamese"
    assert (cfg.model.backbone, cfg.model.mode, cfg.model.dropout) == ("vgg16", "fe", 0.0)
    assert cfg.augmentation.name == "none" and cfg.class_weights.kind == "none"
    assert cfg.optimizer.learning_rate == pytest.approx(1e-5)
    assert (cfg.trainer.batch_size, cfg.trainer.patience) == (32, 10)
    ft = compose("train", "task=siamese", "model.mode=ft", "model.dropout=0.5")
    assert (ft.model.mode, ft.model.unfreeze_from, ft.model.dropout) == ("ft", "block5", 0.5)


def test_study_table_9_and_10_sweeps():
    table9 = compose("train", "experiment=table9_task4_weights", with_hydra=True)
    assert table9.task.name == "4" and table9.model.hidden_units == 64
    assert table9.hydra.sweeper.params == {"class_weights": "none,balanced"}
    table10 = compose("train", "experiment=table10_siamese", with_hydra=True)
    assert table10.task.pairs and table10.model.unfreeze_from == "block5"
    assert table10.hydra.sweeper.params == {"model.mode": "fe,ft", "model.dropout": "0.0,0.5"}


def test_siamese_trains_on_pairs_and_writes_a_run_folder(siamese_run, pair_course):
    assert {p.name for p in siamese_run.iterdir()} >= RUN_FILES
    metrics = read_metrics(siamese_run)
    assert set(metrics) >= CONTRACT_KEYS
    assert metrics["task"] == "siamese" and metrics["class_names"] == ["mass", "calcification"]
    assert metrics["n_params"] == 16_812_610 and metrics["epochs_run"] == 1
    assert metrics["feature_cache"]  # fe, no augmentation: the towers' features are cached
    counts = metrics["counts"]
    # samples are pairs: 8 training pairs split into train/val, 4 test pairs
    assert sum(counts["train"].values()) + sum(counts["val"].values()) == 8
    assert counts["test"] == {"mass": 2, "calcification": 2}
    assert np.sum(metrics["confusion_matrix"]) == 4
    assert OmegaConf.load(siamese_run / "config.yaml").task.pairs is True


def test_saved_siamese_model_reloads_in_safe_mode_to_the_same_numbers(siamese_run, pair_course):
    model = keras.models.load_model(siamese_run / "model.keras", safe_mode=True)
    assert model.count_params() == 16_812_610
    assert model.get_layer("tower").count_params() == 16_812_096
    tensor = np.load(pair_course / "public_test_tensor.npy")
    labels = np.load(pair_course / "public_test_labels.npy")
    abnormality, baseline = to_model_input(tensor[1::2]), to_model_input(tensor[0::2])
    probs = model.predict((abnormality, baseline), verbose=0).astype(np.float64)
    classes = np.isin(labels[1::2], [3, 4]).astype(int)
    again = classification_metrics(classes, probs, ["mass", "calcification"], 1)
    saved = read_metrics(siamese_run)
    assert again["confusion_matrix"] == saved["confusion_matrix"]
    for key in ("accuracy", "auc", "f1"):
        assert again[key] == pytest.approx(saved[key]), key
    assert cross_entropy(classes, probs, "softmax") == pytest.approx(saved["loss"], rel=1e-5)


def test_evaluate_reproduces_the_siamese_metrics(siamese_run, tmp_path):
    result = run_mammo("evaluate", f"run={siamese_run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (evaluated,) = run_folders(tmp_path / "outputs" / "evaluate")
    again, trained = read_metrics(evaluated), read_metrics(siamese_run)
    for key in ("accuracy", "auc", "f1", "f1_macro", "confusion_matrix"):
        assert again[key] == trained[key], key
    assert again["loss"] == pytest.approx(trained["loss"], rel=1e-5)
    assert again["counts"]["test"] == {"mass": 2, "calcification": 2}


def test_siamese_refuses_broken_interleaving_even_when_pairs_are_waived(pair_course, tmp_path):
    broken = write_course(
        tmp_path / "broken",
        (np.load(pair_course / "train_tensor.npy"), np.load(pair_course / "train_labels.npy")),
        (np.load(pair_course / "public_test_tensor.npy")[:-1], np.array([0, 1, 0, 3, 0, 2, 0])),
    )
    result = run_mammo(
        "train", "task=siamese", f"data.dir={broken}", "data.require_pairs=false", *FAST,
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(result, "public_test_labels.npy", "odd number of labels", "task=siamese")
    assert not any((tmp_path / "outputs").rglob("metrics.json"))


def test_a_single_patch_model_is_refused_for_pairs(pair_course, tmp_path):
    result = run_mammo("train", "task=siamese", "model=scratch", f"data.dir={pair_course}",
                       "trainer.progress=false", cwd=tmp_path)  # fmt: skip
    assert_user_error(result, "task siamese feeds (abnormality, baseline) pairs", "model=siamese")


def test_task_4_holdout_and_evaluate(tiny_course, tmp_path):
    """Task 4 through `mammo holdout` (2 splits) and `mammo evaluate` of a split
    (augmentation off for speed; the preset's is run in tests/test_train.py)."""
    result = run_mammo(
        "holdout", "task=4", "holdout.k=2", f"data.dir={tiny_course}", "trainer.epochs=1",
        "augmentation=none", "trainer.progress=false", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (root,) = (tmp_path / "outputs" / "holdout").glob("*/*")
    split = root / "split_1"
    trained = read_metrics(split)
    assert trained["class_names"] == ["baseline", "mass", "calcification"]
    n_test = len(np.load(tiny_course / "public_test_labels.npy"))
    assert np.array(trained["confusion_matrix"]).shape == (3, 3)
    assert np.sum(trained["confusion_matrix"]) == n_test

    (tmp_path / "evaluate").mkdir()
    result = run_mammo("evaluate", f"run={split}", cwd=tmp_path / "evaluate")
    assert result.returncode == 0, result.stderr
    (evaluated,) = run_folders(tmp_path / "evaluate" / "outputs" / "evaluate")
    again = read_metrics(evaluated)
    assert again["confusion_matrix"] == trained["confusion_matrix"]
    assert again["auc"] == pytest.approx(trained["auc"])


@pytest.mark.slow
def test_siamese_holdout(pair_course, tmp_path):
    result = run_mammo("holdout", "task=siamese", "holdout.k=2", f"data.dir={pair_course}",
                       *FAST, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (root,) = (tmp_path / "outputs" / "holdout").glob("*/*")
    for split in ("split_1", "split_2"):
        metrics = read_metrics(root / split)
        assert metrics["task"] == "siamese" and np.sum(metrics["confusion_matrix"]) == 4
