"""Task vs recipe: the study's task names still compose exactly the configs they composed
before tasks and recipes were separated (pinned in golden/, written by `mammo <command>
--cfg job` before the change), and any task composes with any model that fits it."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mammo_cli.config.validate import validate
from tests.helpers import compose

GOLDEN = Path(__file__).parent / "golden"
#: golden file -> (command, overrides) that produced it
PINNED = {
    "train_task-2.1_model-scratch.yaml": ("train", ["task=2.1", "model=scratch"]),
    "train_task-2.1.yaml": ("train", ["task=2.1"]),
    "train_task-2.2.yaml": ("train", ["task=2.2"]),
    "train_task-2.2_class_weights-balanced.yaml": ("train", ["task=2.2", "class_weights=balanced"]),
    "train_task-3.1.yaml": ("train", ["task=3.1"]),
    "train_task-3.1_model.mode-fe_model.dropout-0.0.yaml": (
        "train",
        ["task=3.1", "model.mode=fe", "model.dropout=0.0"],
    ),
    "train_task-3.2.yaml": ("train", ["task=3.2"]),
    "train_task-4.yaml": ("train", ["task=4"]),
    "train_task-siamese.yaml": ("train", ["task=siamese"]),
    "exp_table1_scratch_sweep.yaml": ("train", ["experiment=table1_scratch_sweep"]),
    "exp_table5_vgg_fe.yaml": ("train", ["experiment=table5_vgg_fe", "model=vgg19"]),
    # model.dropout is swept by the experiment, so every job sets it (the pinned config was
    # composed without the sweep, when task 3.1 set 0.5 for any model)
    "exp_table6_vgg_ft.yaml": (
        "train",
        [
            "experiment=table6_vgg_ft",
            "model=vgg19",
            "model.unfreeze_from=block4",
            "model.dropout=0.5",
        ],
    ),
    "exp_table7_fe_weights.yaml": ("train", ["experiment=table7_fe_weights", "model=vgg19"]),
    "exp_table8.yaml": (
        "train",
        ["experiment=table8_ft_weights", "model=vgg19", "class_weights=manual"],
    ),
    "exp_table9_task4_weights.yaml": ("train", ["experiment=table9_task4_weights"]),
    "exp_table10_siamese.yaml": ("train", ["experiment=table10_siamese"]),
    "holdout_table2_holdout_21.yaml": ("holdout", ["experiment=table2_holdout_21"]),
    "holdout_table3_holdout_22.yaml": ("holdout", ["experiment=table3_holdout_22"]),
    "holdout_table4_holdout_22_weights.yaml": ("holdout", ["experiment=table4_holdout_22_weights"]),
}


def leaves(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        return {
            k: v for key, sub in tree.items() for k, v in leaves(sub, f"{prefix}{key}.").items()
        }
    return {prefix.rstrip("."): tree}


@pytest.mark.parametrize("golden", sorted(PINNED))
def test_study_configs_are_unchanged(golden):
    """Every key of the pinned config is composed with the same value (new keys may exist)."""
    command, overrides = PINNED[golden]
    cfg = compose(command, *overrides)
    now = leaves(OmegaConf.to_container(cfg, resolve=False, enum_to_str=True))
    before = leaves(OmegaConf.to_container(OmegaConf.load(GOLDEN / golden), resolve=False))
    assert {key: now.get(key, "<missing>") for key in before} == before


def test_any_task_composes_with_any_model_that_fits_it():
    """task=3.1 model=scratch: mass vs calcification with the scratch net's own defaults
    (the recipe's VGG16 settings do not leak into another model); it validates."""
    cfg = compose("train", "task=3.1", "model=scratch")
    assert list(cfg.task.classes) == ["mass", "calcification"]
    scratch = compose("train", "recipe=none", "model=scratch").model
    assert cfg.model == scratch
    validate(cfg, "train")


def test_recipe_none_keeps_every_group_default():
    cfg = compose("train", "task=3.2", "recipe=none")
    assert cfg.model._target_.endswith("build_scratch")
    assert (cfg.augmentation.name, str(cfg.class_weights.kind)) == ("none", "none")
    assert (cfg.trainer.batch_size, cfg.optimizer.learning_rate) == (50, 1e-3)


def test_a_recipe_can_be_picked_for_another_task():
    """recipe=2.1 on task 2.2: the scratch recipe trains benign vs malignant."""
    cfg = compose("train", "task=2.2", "recipe=2.1")
    assert list(cfg.task.classes) == ["benign", "malignant"]
    assert (cfg.augmentation.name, cfg.trainer.batch_size) == ("mass_calc", 50)
