"""The Siamese network (study figure 28): shared tower, exact sizes, the difference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mammo_cli.models.siamese import build_siamese
from mammo_cli.training.feature_cache import frozen_base_split


def n_trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_siamese_has_the_study_parameter_counts_and_one_shared_tower():
    model = build_siamese(2, mode="fe", weights=None)
    assert [layer.name for layer in model.layers] == [
        "abnormality", "baseline", "tower", "difference", "output",
    ]  # fmt: skip
    tower = model.get_layer("tower")
    assert tower.count_params() == 16_812_096
    assert model.count_params() == 16_812_610
    # one tower applied to both patches: its weights are counted once
    assert n_trainable(model) == 2_097_922  # fe: the tower's Dense(256) and the output
    assert isinstance(model.get_layer("difference"), keras.layers.Subtract)

    # the difference is abnormality - baseline: swapping the patches negates it
    difference = keras.Model(model.inputs, model.get_layer("difference").output)
    rng = np.random.default_rng(0)
    a, b = (rng.random((2, 150, 150, 1), dtype=np.float32) for _ in range(2))
    forward = difference.predict((a, b), verbose=0)
    np.testing.assert_allclose(difference.predict((b, a), verbose=0), -forward, atol=1e-5)
    embed = tower.predict(np.concatenate([a, b]), verbose=0)
    np.testing.assert_allclose(forward, embed[:2] - embed[2:], rtol=1e-5, atol=1e-5)


def test_fine_tuning_unfreezes_block5_of_the_tower_with_dropout():
    model = build_siamese(2, mode="ft", unfreeze_from="block5", dropout=0.5, weights=None)
    block5 = 3 * (3 * 3 * 512 * 512 + 512)
    assert n_trainable(model) == 2_097_922 + block5
    base = model.get_layer("tower").get_layer("vgg16")
    assert base.get_layer("block5_conv1").trainable and not base.get_layer("block4_conv3").trainable
    assert model.get_layer("dropout").rate == pytest.approx(0.5)
    assert model.count_params() == 16_812_610
    assert frozen_base_split(model) is None  # a trainable base: no feature cache
