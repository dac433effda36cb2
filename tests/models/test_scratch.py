"""The study's scratch CNNs: exact shapes and safe saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mammo_cli.models.scratch import build_scratch


def test_scratch_has_the_study_parameter_count():
    model = build_scratch(n_classes=2)
    assert model.count_params() == 343_842
    assert model.get_layer("flatten").output.shape[-1] == 3200


def test_scratch_deep_has_the_study_parameter_count():
    model = build_scratch(n_classes=2, extra_conv=True, dropout=0.2)
    assert model.count_params() == 360_354
    assert model.get_layer("dropout").rate == pytest.approx(0.2)


def test_three_outputs_and_sigmoid():
    model = build_scratch(n_classes=3, output_activation="sigmoid")
    assert model.output_shape == (None, 3)
    assert model.get_layer("output").activation.__name__ == "sigmoid"


def test_hidden_units_change_only_the_dense_layers():
    assert build_scratch(2, hidden_units=128).count_params() == 343_842 + 3200 * 64 + 64 + 64 * 2


def test_saved_model_loads_in_safe_mode(tmp_path):
    model = build_scratch(2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).random((2, 150, 150, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
