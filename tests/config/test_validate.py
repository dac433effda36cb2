"""Every config mistake is refused right after composition: one line, exit status 2,
before any data is read or TensorFlow imported, and nothing written where it pointed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mammo_cli.errors import MammoError
from tests.helpers import assert_user_error, compose, run_mammo_probe

#: (command, overrides, fragments of the one-line error)
REFUSED = [
    ("train", ["trainer.batch_size=0"], ["trainer.batch_size=0", "integer >= 1"]),
    ("train", ["trainer.epochs=0"], ["trainer.epochs=0", ">= 1"]),
    ("train", ["trainer.patience=-1"], ["trainer.patience=-1", ">= 0"]),
    ("train", ["trainer.val_split=1.5"], ["trainer.val_split=1.5", "< 1"]),
    ("train", ["model.dropout=1.5"], ["model.dropout=1.5", "< 1"]),
    ("train", ["model.hidden_units=0"], ["model.hidden_units=0", ">= 1"]),
    ("train", ["model.output_activation=relu"], ["relu", "softmax, sigmoid"]),
    ("train", ["trainer.precision=fp8"], ["fp8", "auto, float32, mixed_bfloat16"]),
    ("train", ["augmentation.zoom=-3"], ["augmentation.zoom=-3", ">= 0"]),
    ("train", ["augmentation.width_shift=5"], ["augmentation.width_shift=5", "< 1"]),
    ("train", ["augmentation.fill_mode=bogus"], ["bogus", "nearest, reflect, constant, wrap"]),
    ("train", ["optimizer.learning_rate=-1"], ["optimizer.learning_rate=-1", "> 0"]),
    ("train", ["optimizer.learning_rate=nan"], ["optimizer.learning_rate=nan", "finite"]),
    (
        "train",
        ["class_weights=manual", "class_weights.weights=[nan,1.0]"],
        ["class_weights.weights holds nan", "finite"],
    ),
    (
        "train",
        ["class_weights=manual", "class_weights.weights=[inf,1.0]"],
        ["class_weights.weights holds inf", "finite"],
    ),
    (
        "train",
        ["task=2.2", "class_weights=manual", "class_weights.weights=[1.0]"],
        ["2 positive weights", "benign, malignant"],
    ),
    ("train", ["trainer.epoch=1"], ["trainer.epoch is not a setting", "trainer.epochs?"]),
    ("train", ["+trainer.epoch=1"], ["trainer.epoch is not a setting", "trainer.epochs?"]),
    ("train", ["+foo=1"], ["foo is not a setting"]),
    ("train", ["task=siamese", "model=vgg16"], ["pairs", "model=siamese"]),
    ("train", ["task=4", "model=siamese"], ["task=siamese"]),
    ("train", ["task=3.1", "model.unfreeze_from=block9"], ["block9", "block1, block2"]),
    (
        "train",
        ["data.dir=/no/such/folder"],
        ["data.dir=/no/such/folder is not a folder", "no such path"],
    ),
    ("train", ["seed=-1"], ["seed=-1", ">= 0"]),
    ("holdout", ["holdout.k=1"], ["holdout.k=1", ">= 2"]),
    ("evaluate", ["run=/no/such/run"], ["run=/no/such/run is not a folder"]),
    ("evaluate", ["run=/no/such/run", "evaluate.target_sensitivity=1.5"], ["target_sensitivity"]),
    (
        "predict",
        ["run=/no/such/run", "input=x", "predict.threshold=1.5"],
        ["threshold=1.5", "<= 1"],
    ),
    ("explain", ["run=/no/such/run", "n=0"], ["n=0", ">= 1"]),
    ("ensemble", ["members=[a,b]", "ensemble.weights=[1,-1]"], ["members"]),
    ("ensemble", ["members=[a]"], ["at least two"]),
    ("prepare", ["source=/nope", "csv_dir=/nope", "out=/tmp/x"], ["source=/nope"]),
    ("evaluate", [], ["missing run="]),
]


#: model settings no model can be built with, for the pretrained models (in-process)
BAD_MODELS = [
    (["model=vgg16", "model.backbone=alexnet"], "alexnet"),
    (["model=vgg16", "model.mode=train"], "train"),
    (["model=vgg16", "model.mode=ft", "model.unfreeze_from=block6"], "block1, block2"),
    (["model=resnet50", "model.mode=ft", "model.unfreeze_from=block5"], "conv1, conv2"),
    (["model=densenet121", "model.mode=ft", "model.unfreeze_from=block9"], "pool2, conv3"),
    (["model=efficientnetv2b0", "model.mode=ft", "model.unfreeze_from=x"], "stem, block1"),
    (["model=convnext_tiny", "model.mode=ft", "model.unfreeze_from=x"], "stage_0, stage_1"),
    (["model=vgg16", "model.output_activation=relu"], "relu"),
    (["model=vgg16", "model.dropout=1.0"], "model.dropout=1.0"),
    (["model=densenet121", "model.pooling=max"], "flatten, avg"),
    (["model=vgg16", "model.weights=/no/such/weights.h5"], "no such file"),
]


@pytest.mark.parametrize(("overrides", "fragment"), BAD_MODELS)
def test_model_settings_are_refused_by_the_config_check(overrides, fragment):
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mammo_cli.config.validate import validate

    with pytest.raises((MammoError, HydraException, OmegaConfBaseException)) as error:
        validate(compose("train", "recipe=none", *overrides), "train")
    assert fragment in f"{error.value} {error.value.__cause__}"


@pytest.mark.parametrize(("command", "overrides", "fragments"), REFUSED)
def test_config_mistakes_are_refused_before_tensorflow(command, overrides, fragments, tmp_path):
    result, tensorflow = run_mammo_probe(command, *overrides, cwd=tmp_path)
    assert_user_error(result, *fragments)
    assert not tensorflow
    assert not (tmp_path / "outputs").exists()  # nothing written


def test_a_run_folder_of_another_kind_says_what_it_is(tmp_path):
    describe = tmp_path / "described"
    result, _ = run_mammo_probe("data", "describe", f"hydra.run.dir={describe}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result, tensorflow = run_mammo_probe("evaluate", f"run={describe}", cwd=tmp_path)
    assert_user_error(result, "is a mammo describe folder", "mammo train")
    assert not tensorflow


def test_unquoted_non_ascii_paths_work(tmp_path):
    folder = tmp_path / "données"
    result, _ = run_mammo_probe("train", f"data.dir={folder}", cwd=tmp_path)
    assert_user_error(result, f"data.dir={folder} is not a folder")


def test_nothing_is_written_where_a_refused_run_pointed(tmp_path: Path):
    target = tmp_path / "inside" / "a" / "new" / "folder"
    result, _ = run_mammo_probe(
        "train", "trainer.batch_size=0", f"hydra.run.dir={target}", cwd=tmp_path
    )
    assert_user_error(result, "trainer.batch_size=0")
    assert not (tmp_path / "inside").exists()
