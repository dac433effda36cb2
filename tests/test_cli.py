"""The dispatcher: help, numeric task names, config errors without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mammo_cli.cli import quote_values
from tests.helpers import assert_user_error, compose, run_mammo


def test_help_lists_commands_without_importing_tensorflow():
    code = (
        "import sys; from mammo_cli.cli import main; rc = main(['--help']); "
        "assert 'tensorflow' not in sys.modules and rc == 0"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "data"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("trainer.epoch=3", ["trainer.epoch is not a setting", "trainer.epochs?"]),
        ("task=9", ["task/9", "2.1, 2.2, 3.1, 3.2, 4"]),
        ("trainer.epochs=ten", ["trainer.epochs", "Integer"]),
        ("model=resnet9", ["model/resnet9"]),
        ("augmentation=twirl", ["augmentation/twirl"]),
    ],
)
def test_config_mistakes_are_one_line_errors_without_tensorflow(override, fragments):
    code = (
        "import sys; from mammo_cli.cli import main; "
        f"rc = main(['train', '{override}']); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_user_error(result, *fragments)


def test_unknown_command(tmp_path):
    assert_user_error(run_mammo("trian", cwd=tmp_path), "unknown command 'trian'")


def test_numeric_task_choices_are_quoted():
    assert quote_values(["task=2.1", "task=2.1,2.2", "task=4", "model=scratch"]) == [
        "task='2.1'",
        "task='2.1','2.2'",
        "task='4'",
        "model=scratch",
    ]
    assert quote_values(["data.dir=/données", "data.dir=[/é]"]) == [
        "data.dir='/données'",
        "data.dir=[/é]",
    ]


@pytest.mark.parametrize(
    ("task", "model", "augmentation", "class_weights", "n_classes"),
    [
        ("2.1", "mammo_cli.models.scratch.build_scratch", "mass_calc", "none", 2),
        ("2.2", "mammo_cli.models.scratch.build_scratch", "benign_malignant", "none", 2),
        ("4", "mammo_cli.models.scratch.build_scratch", "mass_calc", "balanced", 3),
    ],
)
def test_task_presets(task, model, augmentation, class_weights, n_classes):
    cfg = compose("train", f"task={task}")
    assert cfg.task.name == task
    assert cfg.model._target_ == model
    assert cfg.augmentation.name == augmentation
    assert cfg.class_weights.kind == class_weights
    assert len(cfg.task.classes) == n_classes
    assert cfg.trainer.batch_size == 50 and cfg.trainer.patience == 50
    assert cfg.optimizer.learning_rate == pytest.approx(1e-3)


def test_task_22_uses_the_deeper_model_but_the_command_line_wins():
    assert compose("train", "task=2.2").model.extra_conv is True
    assert compose("train", "task=2.2", "model=scratch").model.extra_conv is False


def test_hydra_cfg_job_works_through_the_dispatcher(tmp_path):
    result = run_mammo("train", "--cfg", "job", "task=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "name: '4'" in result.stdout and "baseline" in result.stdout


def test_unusable_output_folder_is_a_user_error(tmp_path):
    result = run_mammo("train", "hydra.run.dir=/proc/mammo_run", cwd=tmp_path)
    assert_user_error(result, "cannot use /proc/mammo_run")
