"""`mammo train` and `mammo evaluate` end to end: real TensorFlow, tiny data, 1-2 epochs."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.helpers import (
    CONTRACT_KEYS,
    RUN_FILES,
    assert_user_error,
    read_metrics,
    run_copy_with_model,
    run_folders,
    run_mammo,
)

#: the trained_run fixture's command; the same-seed test runs it again
TRAINED_RUN = ("task=2.1", "model=scratch", "trainer.epochs=2", "trainer.batch_size=16")


@pytest.fixture(scope="module")
def trained_run(tiny_course, tmp_path_factory):
    """One 2-epoch task 2.1 run on the tiny course folder."""
    cwd = tmp_path_factory.mktemp("train")
    result = run_mammo("train", *TRAINED_RUN, f"data.dir={tiny_course}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "train")
    return run, result


def test_train_writes_the_full_run_folder(trained_run, tiny_course):
    run, result = trained_run
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    metrics = read_metrics(run)
    assert set(metrics) >= CONTRACT_KEYS
    assert metrics["task"] == "2.1" and metrics["class_names"] == ["mass", "calcification"]
    assert metrics["epochs_run"] == 2 and metrics["seed"] == 42
    labels = np.load(tiny_course / "train_labels.npy")
    test_labels = np.load(tiny_course / "public_test_labels.npy")
    counts = metrics["counts"]
    n_mass = int(np.isin(labels, [1, 2]).sum())
    assert counts["train"]["mass"] + counts["val"]["mass"] == n_mass
    assert sum(counts["train"].values()) + sum(counts["val"].values()) == int((labels > 0).sum())
    assert counts["test"]["calcification"] == int(np.isin(test_labels, [3, 4]).sum())
    assert np.sum(metrics["confusion_matrix"]) == int((test_labels > 0).sum())
    assert "accuracy" in result.stdout  # the rich summary table
    assert len(history := (run / "history.csv").read_text().splitlines()) == 3
    assert history[0].startswith("epoch,") and "val_loss" in history[0]
    config = OmegaConf.load(run / "config.yaml")
    assert config.task.name == "2.1" and config.data.dir == str(tiny_course)


def test_saved_model_loads_in_safe_mode(trained_run):
    run, _ = trained_run
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.count_params() == 343_842


def test_evaluate_reproduces_the_test_metrics(trained_run, tmp_path):
    run, _ = trained_run
    result = run_mammo("evaluate", f"run={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (eval_run,) = run_folders(tmp_path / "outputs" / "evaluate")
    evaluated, trained = read_metrics(eval_run), read_metrics(run)
    assert set(evaluated) >= CONTRACT_KEYS
    for key in ("accuracy", "auc", "f1", "f1_macro", "confusion_matrix"):
        assert evaluated[key] == trained[key]
    assert evaluated["loss"] == pytest.approx(trained["loss"], rel=1e-5)
    assert (eval_run / "confusion_matrix.png").is_file()


def test_evaluate_refuses_a_folder_without_a_model(tmp_path):
    result = run_mammo("evaluate", f"run={tmp_path}", cwd=tmp_path)
    assert_user_error(result, "is not a folder written by mammo")


def test_evaluate_refuses_a_run_folder_without_its_model(trained_run, tmp_path):
    run, _ = trained_run
    fake = tmp_path / "no_model"
    fake.mkdir()
    for name in ("config.yaml", "provenance.json", "metrics.json"):
        (fake / name).write_text((run / name).read_text())
    result = run_mammo("evaluate", f"run={fake}", cwd=tmp_path)
    assert_user_error(result, f"{fake} holds no model.keras")
    assert not any((tmp_path / "outputs").rglob("metrics.json"))


def test_evaluate_refuses_a_file_that_is_not_a_model(trained_run, tmp_path):
    run, _ = trained_run
    fake = run_copy_with_model(
        run, tmp_path / "fake_run", lambda path: path.write_bytes(b"not a zip")
    )
    result = run_mammo("evaluate", f"run={fake}", cwd=tmp_path)
    assert_user_error(result, "not a loadable Keras model in safe mode")


def test_evaluate_refuses_a_model_that_needs_unsafe_deserialisation(trained_run, tmp_path):
    run, _ = trained_run

    def lambda_model(path):
        inputs = keras.Input((150, 150, 1))
        outputs = keras.layers.Lambda(lambda x: x[:, :2, 0, 0])(inputs)
        keras.Model(inputs, outputs).save(path)

    fake = run_copy_with_model(run, tmp_path / "fake_run", lambda_model)
    result = run_mammo("evaluate", f"run={fake}", cwd=tmp_path)
    assert_user_error(result, "safe mode")
    assert not any((tmp_path / "outputs").rglob("metrics.json"))


@keras.saving.register_keras_serializable(package="mammo")
class CaffePreprocess(keras.layers.Layer):
    """A layer of mammo's own, as earlier versions saved in pretrained models."""

    def call(self, inputs):
        return inputs * 255.0


def test_evaluate_names_the_layers_of_a_model_saved_by_an_earlier_mammo(trained_run, tmp_path):
    run, _ = trained_run

    def earlier_model(path):
        inputs = keras.Input((150, 150, 1))
        x = keras.layers.Flatten()(CaffePreprocess()(inputs))
        keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)

    fake = run_copy_with_model(run, tmp_path / "earlier_run", earlier_model)
    result = run_mammo("evaluate", f"run={fake}", cwd=tmp_path)
    assert_user_error(
        result, "saved by an earlier mammo with its own layers (CaffePreprocess)", "train the run"
    )
    assert not any((tmp_path / "outputs").rglob("metrics.json"))


def test_same_seed_gives_the_same_metrics_and_weights(trained_run, tiny_course, tmp_path):
    run, _ = trained_run
    result = run_mammo("train", *TRAINED_RUN, f"data.dir={tiny_course}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (again,) = run_folders(tmp_path / "outputs" / "train")
    first, second = read_metrics(run), read_metrics(again)
    for key in ("accuracy", "loss", "auc", "f1", "f1_macro", "confusion_matrix", "counts"):
        assert first[key] == second[key], key
    assert (run / "history.csv").read_text() == (again / "history.csv").read_text()
    weights = [keras.models.load_model(r / "model.keras").get_weights() for r in (run, again)]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_multirun_sweep_gives_one_complete_run_per_job(tiny_course, tmp_path):
    result = run_mammo(
        "train",
        "-m",
        "task=2.1",
        "model.hidden_units=8,16",
        "trainer.batch_size=16,32",
        f"data.dir={tiny_course}",
        "trainer.epochs=1",
        "trainer.progress=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = run_folders(tmp_path / "outputs" / "train-multirun")
    assert len(runs) == 4
    swept = set()
    for run in runs:
        config = OmegaConf.load(run / "config.yaml")
        swept.add((config.model.hidden_units, config.trainer.batch_size))
        assert (run / "metrics.json").is_file()
    assert swept == {(8, 16), (8, 32), (16, 16), (16, 32)}


def test_task_4_gives_a_3x3_confusion_matrix(tiny_course, tmp_path):
    result = run_mammo(
        "train", "task=4", f"data.dir={tiny_course}", "trainer.epochs=1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs" / "train")
    metrics = read_metrics(run)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (3, 3)
    assert matrix.sum() == len(np.load(tiny_course / "public_test_labels.npy"))
    assert set(metrics["precision"]) == {"baseline", "mass", "calcification"}
    assert metrics["class_weight"]["baseline"] < 1 < metrics["class_weight"]["mass"]


def test_task_22_preset_with_sigmoid_output(tiny_course, tmp_path):
    result = run_mammo(
        "train",
        "task=2.2",
        f"data.dir={tiny_course}",
        "trainer.epochs=1",
        "model.output_activation=sigmoid",
        "optimizer=rmsprop",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs" / "train")
    metrics = read_metrics(run)
    assert metrics["class_names"] == ["benign", "malignant"]
    assert metrics["n_params"] == 360_354


def test_demo_command_writes_a_course_folder_that_trains(tmp_path):
    out = tmp_path / "demo"
    result = run_mammo("data", "demo", f"out={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    labels = np.load(out / "train_labels.npy", allow_pickle=False)
    result = run_mammo(
        "train",
        "task=2.1",
        "model=scratch",
        f"data.dir={out}",
        "trainer.epochs=1",
        "trainer.progress=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs" / "train")
    counts = read_metrics(run)["counts"]
    assert counts["train"]["mass"] + counts["val"]["mass"] == int(np.isin(labels, [1, 2]).sum())
    assert sum(counts["test"].values()) == int((np.load(out / "public_test_labels.npy") > 0).sum())


def test_manual_class_weights_need_values(tiny_course, tmp_path):
    result = run_mammo(
        "train", "class_weights=manual", f"data.dir={tiny_course}", "trainer.epochs=1", cwd=tmp_path
    )
    assert_user_error(result, "class_weights.weights")
    for run in run_folders(tmp_path / "outputs"):
        assert not (run / "metrics.json").exists()
        assert json.loads((run / "status.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_study_preset_21_reaches_085_on_the_demo_set(tmp_path):
    """The full recipe: 100 epochs, 16 minutes on a CPU without AVX2 or bfloat16."""
    result = run_mammo("train", "task=2.1", "model=scratch", cwd=tmp_path, timeout=3600)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs" / "train")
    assert read_metrics(run)["accuracy"] >= 0.85
