"""Augmentation: touches training batches only, with the study's settings."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.preprocessing.image import apply_affine_transform
from omegaconf import OmegaConf
from scipy.ndimage import gaussian_filter

from mammo_cli.config import AugmentationConfig
from mammo_cli.training.augmentation import build_augmenter, study_transforms
from mammo_cli.training.fit import make_dataset

CONF = "conf/augmentation"
#: the study's ImageDataGenerator arguments for mass vs calcification (study 5.1)
STUDY_MASS_CALC = {
    "rotation_degrees": 40,
    "width_shift": 0.2,
    "height_shift": 0.2,
    "zoom": 0.2,
    "shear_degrees": 0.2,
    "horizontal_flip": True,
    "fill_mode": "nearest",
}


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


def test_mass_calc_has_the_study_ranges():
    augmenter = build_augmenter(preset("mass_calc"), seed=0)
    config = augmenter.get_config()
    assert {key: config[key] for key in STUDY_MASS_CALC} == STUDY_MASS_CALC


@pytest.mark.parametrize(
    "theta, shift_x, shift_y, shear, zoom_x, zoom_y",
    [
        (30, 0, 0, 0, 1, 1),
        (0, 12, -9, 0, 1, 1),
        (0, 0, 0, 10, 0.85, 1.1),
        (25, 7, -5, 3, 0.9, 1.15),
    ],
)
def test_one_resampling_equals_image_data_generator(theta, shift_x, shift_y, shear, zoom_x, zoom_y):
    """The composed transform is ImageDataGenerator's, pixel for pixel (border fill too)."""
    patch = gaussian_filter(np.random.default_rng(1).random((150, 150)), 3)[..., None]
    patch = patch.astype(np.float32)
    expected = apply_affine_transform(
        patch,
        theta=theta,
        tx=shift_x,  # ImageDataGenerator's first coordinate is the column (x) here
        ty=shift_y,
        shear=shear,
        zx=zoom_x,
        zy=zoom_y,
        row_axis=0,
        col_axis=1,
        channel_axis=2,
        fill_mode="nearest",
        order=1,
    )
    args = [tf.constant([value], tf.float32) for value in (theta, shift_x, shift_y, shear)]
    args += [tf.constant([value], tf.float32) for value in (zoom_x, zoom_y, 0.0)]
    transforms = study_transforms(*args, quarter_turns=tf.constant([0]), size=150)
    out = keras.ops.image.affine_transform(patch[None], transforms, fill_mode="nearest")
    np.testing.assert_allclose(out.numpy()[0], expected, atol=1e-5)


def test_flips_mirror_exactly_and_a_seed_repeats_the_draws():
    only_flip = OmegaConf.merge(
        preset("none"), {"name": "flip", "horizontal_flip": True, "fill_mode": "nearest"}
    )
    x = images(32)
    out = build_augmenter(only_flip, seed=3)(x, training=True).numpy()
    flipped = [np.array_equal(o, np.flip(p, axis=1)) for o, p in zip(out, x, strict=True)]
    kept = [np.array_equal(o, p) for o, p in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 32
    again = build_augmenter(only_flip, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(out, again)


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
    assert build_augmenter(cfg, 0).get_config()["horizontal_flip"] is False
