"""Transfer-learning models: exact shapes, trainable parts, the input adapter, weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mammo_cli.errors import MammoError
from mammo_cli.models.pretrained import build_pretrained
from tests.helpers import n_trainable


def test_vgg16_has_the_study_parameter_counts():
    model = build_pretrained(2, backbone="vgg16", mode="fe", weights=None)
    assert model.count_params() == 16_812_610
    assert n_trainable(model) == 2_097_922
    assert [layer.name for layer in model.layers] == [
        "patch", "to_rgb", "to_255", "preprocess", "vgg16", "flatten", "hidden", "output",
    ]  # fmt: skip
    averaged = build_pretrained(2, backbone="vgg16", weights=None, pooling="avg")
    assert averaged.get_layer("pool").output.shape[-1] == 512
    assert n_trainable(averaged) == 512 * 256 + 256 + 256 * 2 + 2


def test_vgg19_has_the_study_parameter_count():
    assert build_pretrained(2, backbone="vgg19", weights=None).count_params() == 22_122_306


def test_fine_tuning_unfreezes_from_the_named_block():
    model = build_pretrained(2, mode="ft", unfreeze_from="block5", dropout=0.5, weights=None)
    block5 = 3 * (3 * 3 * 512 * 512 + 512)
    assert n_trainable(model) == 2_097_922 + block5
    base = model.get_layer("vgg16")
    assert not base.get_layer("block4_conv3").trainable and base.get_layer("block5_conv1").trainable
    assert model.get_layer("dropout").rate == pytest.approx(0.5)
    block4 = build_pretrained(2, mode="ft", unfreeze_from="block4", weights=None)
    assert n_trainable(block4) > n_trainable(model)


def test_resnet50_fine_tunes_a_stage_with_frozen_batch_norm():
    model = build_pretrained(2, backbone="resnet50", mode="ft", unfreeze_from="conv5", weights=None)
    base = model.get_layer("resnet50")
    assert base.get_layer("conv5_block1_1_conv").trainable
    assert not base.get_layer("conv5_block1_1_bn").trainable
    assert not base.get_layer("conv4_block6_out").trainable


def test_weights_from_a_local_file_and_safe_mode_round_trip(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(150, 150, 3))
    path = tmp_path / "vgg16.weights.h5"
    source.save_weights(path)
    model = build_pretrained(2, weights=str(path), dropout=0.5)
    for loaded, saved in zip(model.get_layer("vgg16").weights, source.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(saved))
    model.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    x = np.random.default_rng(1).random((2, 150, 150, 1), dtype=np.float32)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    bad = tmp_path / "not_weights.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(MammoError, match="cannot load it into vgg16"):
        build_pretrained(2, weights=str(bad))
