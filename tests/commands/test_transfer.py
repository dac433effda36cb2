"""Transfer learning end to end through the CLI: presets 3.1/3.2, VGG19, ResNet50.

Random backbone weights (model.weights=null; no download in tests), one epoch, a
course folder of 10 training and 4 test pairs, batch 4.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import pytest

from tests.helpers import (
    CONTRACT_KEYS,
    FAST,
    RUN_FILES,
    assert_user_error,
    pairs,
    read_metrics,
    run_folders,
    run_mammo,
    write_course,
)


@pytest.fixture(scope="module")
def small_course(tmp_path_factory) -> Path:
    return write_course(tmp_path_factory.mktemp("small_course"), pairs(10, 1), pairs(4, 2))


def train(cwd: Path, *overrides: str) -> Path:
    cwd.mkdir(parents=True, exist_ok=True)
    result = run_mammo("train", *overrides, *FAST, cwd=cwd)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "train")
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    assert set(read_metrics(run)) >= CONTRACT_KEYS
    return run


def test_task_31_fine_tunes_vgg16_and_evaluate_works_on_it(small_course, tmp_path):
    run = train(tmp_path / "train", "task=3.1", f"data.dir={small_course}")
    metrics = read_metrics(run)
    assert metrics["class_names"] == ["mass", "calcification"]
    assert metrics["n_params"] == 16_812_610 and not metrics["feature_cache"]
    n_train = sum(metrics["counts"]["train"].values())
    assert metrics["train_samples"] == 3 * n_train  # offline_x3 on the training split only
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.get_layer("vgg16").get_layer("block5_conv1").trainable
    assert model.get_layer("output").activation.__name__ == "sigmoid"

    (tmp_path / "evaluate").mkdir()
    result = run_mammo("evaluate", f"run={run}", cwd=tmp_path / "evaluate")
    assert result.returncode == 0, result.stderr
    (evaluated,) = run_folders(tmp_path / "evaluate" / "outputs" / "evaluate")
    again = read_metrics(evaluated)
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    assert again["loss"] == pytest.approx(metrics["loss"], rel=1e-4)


def test_task_32_trains_the_vgg16_head_on_cached_features(small_course, tmp_path):
    metrics = read_metrics(train(tmp_path, "task=3.2", f"data.dir={small_course}"))
    assert metrics["class_names"] == ["benign", "malignant"]
    assert metrics["feature_cache"] and metrics["n_params"] == 16_812_610
    assert metrics["class_weight"] == {"benign": 1.0, "malignant": 1.25}


def test_vgg19_fine_tuning_runs_end_to_end(small_course, tmp_path):
    run = train(
        tmp_path,
        "task=3.1",
        "model=vgg19",
        "model.mode=ft",
        "augmentation=none",
        f"data.dir={small_course}",
    )
    metrics = read_metrics(run)
    assert metrics["n_params"] == 22_122_306 and not metrics["feature_cache"]


def test_resnet50_feature_extraction_runs_end_to_end(small_course, tmp_path):
    run = train(
        tmp_path, "task=3.2", "model=resnet50", "augmentation=none", f"data.dir={small_course}"
    )
    assert read_metrics(run)["feature_cache"]
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.get_layer("resnet50").trainable is False


def test_missing_imagenet_weights_fail_fast_offline(small_course, tmp_path):
    """No cached weights and no network (a dead proxy): one line naming the file, exit 2."""
    dead_proxy = "http://127.0.0.1:9"
    env = {"KERAS_HOME": str(tmp_path / "keras"), "https_proxy": dead_proxy}
    env.update({"HTTPS_PROXY": dead_proxy, "http_proxy": dead_proxy, "HTTP_PROXY": dead_proxy})
    started = time.perf_counter()
    result = run_mammo("train", "task=3.1", f"data.dir={small_course}", cwd=tmp_path, env=env)
    assert time.perf_counter() - started < 60
    assert_user_error(
        result,
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        str(tmp_path / "keras" / "models"),
        "model.weights=<path",
        "model.weights=null",
    )
    for run in run_folders(tmp_path / "outputs"):
        assert not (run / "metrics.json").exists()
