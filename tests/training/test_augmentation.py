"""Augmentation: touches training batches only, with the study's settings."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from mammo_cli.config import AugmentationConfig
from mammo_cli.training.augmentation import build_augmenter
from mammo_cli.training.fit import make_dataset

CONF = "conf/augmentation"


def preset(name: str) -> AugmentationConfig:
    return OmegaConf.merge(
        OmegaConf.structured(AugmentationConfig), OmegaConf.load(f"{CONF}/{name}.yaml")
    )


def images(n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((n, 150, 150, 1), dtype=np.float32)


def test_none_builds_no_augmenter():
    assert build_augmenter(preset("none"), seed=0) is None


@pytest.mark.parametrize("name", ["mass_calc", "benign_malignant"])
def test_presets_change_training_batches_but_not_validation(name):
    x, y = images(), np.array([0, 1] * 4)
    augmenter = build_augmenter(preset(name), seed=0)
    train = next(iter(make_dataset(x, y, 2, 8, shuffle_seed=None, augmenter=augmenter)))[0].numpy()
    val = next(iter(make_dataset(x, y, 2, 8)))[0].numpy()
    assert train.shape == x.shape
    assert not np.allclose(train, x)
    np.testing.assert_array_equal(val, x)


def test_mass_calc_layers_follow_the_study():
    augmenter = build_augmenter(preset("mass_calc"), seed=0)
    names = [type(layer).__name__ for layer in augmenter.layers]
    assert names == [
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "RandomShear",
        "RandomFlip",
    ]
    rotation = augmenter.layers[0]
    assert (
        rotation.factor == pytest.approx((-40 / 360, 40 / 360)) and rotation.fill_mode == "nearest"
    )


def test_benign_malignant_rotates_by_right_angles_only():
    cfg = preset("benign_malignant")
    only_rot90 = OmegaConf.merge(
        cfg, {"width_shift": 0, "height_shift": 0, "zoom": 0, "shear_degrees": 0}
    )
    augmenter = build_augmenter(only_rot90, seed=0)
    x = images(16)
    out = next(iter(make_dataset(x, np.zeros(16, int), 2, 16, augmenter=augmenter)))[0].numpy()
    for original, rotated in zip(x, out, strict=True):
        assert any(np.array_equal(np.rot90(original, k), rotated) for k in range(4))
    assert "RandomFlip" not in [type(layer).__name__ for layer in build_augmenter(cfg, 0).layers]
