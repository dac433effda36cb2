"""offline_x3: the training split expanded once, deterministically; nothing on the fly."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from mammo_cli.config import AugmentationConfig
from mammo_cli.config.validate import check_augmentation
from mammo_cli.errors import MammoError
from mammo_cli.models.scratch import build_scratch
from mammo_cli.training.augmentation import expand_offline, training_augmenter
from mammo_cli.training.fit import set_precision


def preset(name: str) -> AugmentationConfig:
    return OmegaConf.merge(
        OmegaConf.structured(AugmentationConfig), OmegaConf.load(f"conf/augmentation/{name}.yaml")
    )


def test_offline_x3_adds_two_augmented_copies_deterministically():
    cfg = preset("offline_x3")
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 150, 150, 1), dtype=np.float32), np.array([0, 1, 0, 1, 1])
    expanded, labels = expand_offline(x, y, cfg, seed=3)
    assert expanded.shape == (15, 150, 150, 1) and expanded.dtype == np.float32
    np.testing.assert_array_equal(labels, np.tile(y, 3))
    np.testing.assert_array_equal(expanded[:5], x)
    for copy in (expanded[5:10], expanded[10:]):
        assert not np.allclose(copy, x)
    assert not np.allclose(expanded[5:10], expanded[10:])
    np.testing.assert_array_equal(expand_offline(x, y, cfg, seed=3)[0], expanded)
    assert not np.array_equal(expand_offline(x, y, cfg, seed=4)[0], expanded)


def test_offline_augmentation_turns_on_the_fly_augmentation_off():
    assert training_augmenter(preset("offline_x3"), seed=0) is None
    assert training_augmenter(preset("mass_calc"), seed=0) is not None
    x, y = np.zeros((2, 150, 150, 1), np.float32), np.array([0, 1])
    assert expand_offline(x, y, preset("mass_calc"), seed=0)[0] is x


def test_offline_copies_need_a_transform():
    cfg = OmegaConf.create({"augmentation": OmegaConf.merge(preset("none"), {"offline_copies": 2})})
    with pytest.raises(MammoError, match="offline_copies=2 but augmentation none"):
        check_augmentation(cfg.augmentation)


def test_mixed_precision_keeps_the_output_layer_in_float32():
    try:
        set_precision("mixed_bfloat16")
        model = build_scratch(2)
        assert model.get_layer("conv1").compute_dtype == "bfloat16"
        assert model.get_layer("output").compute_dtype == "float32"
        assert model.output.dtype == "float32"
    finally:
        set_precision("float32")
    assert keras.mixed_precision.global_policy().name == "float32"
