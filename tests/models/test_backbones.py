"""The ImageNet backbones beyond the study's: sizes, stages, freezing, the input adapter
against each application's own preprocessing, and the weights files Keras would fetch."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mammo_cli.config.schema import BACKBONE_STAGES
from mammo_cli.errors import MammoError
from mammo_cli.models.backbones import BACKBONES, build_base, resolve_weights
from mammo_cli.models.pretrained import build_pretrained
from tests.helpers import compose, n_trainable

NEW = ("densenet121", "efficientnetv2b0", "convnext_tiny")
#: each application's documented preprocess_input
PREPROCESS_INPUT = {
    "vgg16": keras.applications.vgg16.preprocess_input,
    "vgg19": keras.applications.vgg19.preprocess_input,
    "resnet50": keras.applications.resnet50.preprocess_input,
    "densenet121": keras.applications.densenet.preprocess_input,
    "efficientnetv2b0": keras.applications.efficientnet_v2.preprocess_input,
    "convnext_tiny": keras.applications.convnext.preprocess_input,
}
#: parameters with 2 classes and average pooling: (total, trainable in fe mode)
SIZES = {
    "densenet121": (7_300_418, 262_914),
    "efficientnetv2b0": (6_247_762, 328_450),
    "convnext_tiny": (28_017_506, 197_378),
}


@pytest.fixture(scope="module")
def fe_models() -> dict[str, keras.Model]:
    """Each new backbone as its config builds it (fe, avg pooling), random weights."""
    return {name: build_pretrained(2, backbone=name, weights=None, pooling="avg") for name in NEW}


@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    return np.random.default_rng(0).random((2, 150, 150, 1), dtype=np.float32)


@pytest.mark.parametrize("backbone", NEW)
def test_parameter_counts_with_two_classes(fe_models, backbone):
    model = fe_models[backbone]
    total, trainable_fe = SIZES[backbone]
    assert model.count_params() == total
    assert n_trainable(model) == trainable_fe  # the head: Dense(256) and Dense(2)
    assert [layer.name for layer in model.layers] == [
        "patch", "to_rgb", "to_255", "preprocess", backbone, "pool", "hidden", "output",
    ]  # fmt: skip
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)


@pytest.mark.parametrize(
    ("model", "pooling"),
    [
        *((name, "avg") for name in NEW),
        ("vgg16", "flatten"),
        ("resnet50", "flatten"),
        ("siamese", "flatten"),
    ],
)
def test_the_configs_pooling_and_stage(model, pooling):
    cfg = compose("train", f"model={model}").model
    assert cfg.pooling == pooling and cfg.mode == "fe"
    assert cfg.unfreeze_from in BACKBONES[cfg.backbone].stages
    assert model == "siamese" or cfg.backbone == model


def test_flatten_pooling_keeps_the_study_layer_name():
    model = build_pretrained(2, backbone="densenet121", weights=None, pooling="flatten")
    assert model.get_layer("flatten").output.shape[-1] == 4 * 4 * 1024
    assert n_trainable(model) == 4 * 4 * 1024 * 256 + 256 + 256 * 2 + 2


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_every_stage_names_layers_of_the_backbone_in_order(fe_models, backbone):
    base = fe_models[backbone].get_layer(backbone) if backbone in NEW else None
    names = [layer.name for layer in (base or build_base(backbone, "fe", "", None)).layers]
    starts = [
        next((i for i, name in enumerate(names) if name.startswith(prefix)), None)
        for prefix in BACKBONES[backbone].stages.values()
    ]
    assert None not in starts and starts == sorted(starts) and len(set(starts)) == len(starts)


def test_the_config_offers_the_stages_the_models_know():
    """config.schema.BACKBONE_STAGES (what validation accepts, TensorFlow-free) names the
    stages models.backbones maps to layers, in the same order."""
    assert {name: tuple(spec.stages) for name, spec in BACKBONES.items()} == BACKBONE_STAGES


def trainable(base: keras.Model, name: str) -> bool:
    return bool(base.get_layer(name).trainable_weights)


def test_densenet_fine_tunes_from_the_last_dense_block_with_frozen_batch_norm():
    model = build_pretrained(
        2, backbone="densenet121", mode="ft", unfreeze_from="conv5", weights=None, pooling="avg"
    )
    base = model.get_layer("densenet121")
    assert trainable(base, "conv5_block1_1_conv") and trainable(base, "conv5_block16_2_conv")
    assert not trainable(base, "pool4_conv") and not trainable(base, "conv4_block24_2_conv")
    assert not any(layer.trainable_weights for layer in base.layers if "bn" in layer.name)
    conv5 = sum(
        layer.count_params()
        for layer in base.layers
        if layer.name.startswith("conv5_") and not layer.name.endswith("_bn")
    )
    assert n_trainable(model) == 262_914 + conv5


def test_efficientnet_fine_tunes_a_block_and_switches_off_frozen_stochastic_depth():
    model = build_pretrained(
        2, backbone="efficientnetv2b0", mode="ft", unfreeze_from="block6", weights=None
    )
    base = model.get_layer("efficientnetv2b0")
    assert trainable(base, "block6a_expand_conv") and trainable(base, "top_conv")
    assert not trainable(base, "block5e_project_conv") and not trainable(base, "stem_conv")
    batch_norms = [
        layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert batch_norms and not any(layer.trainable for layer in batch_norms)
    assert base.get_layer("block5e_drop").rate == 0.0  # frozen block: as at inference
    assert base.get_layer("block6h_drop").rate > 0.0  # fine-tuned block: Keras' schedule
    fe_base = build_base("efficientnetv2b0", "fe", "block6", None)
    dropouts = [layer for layer in fe_base.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts and all(layer.rate == 0.0 for layer in dropouts)


def test_convnext_fine_tunes_a_stage_with_its_layer_norms():
    model = build_pretrained(
        2, backbone="convnext_tiny", mode="ft", unfreeze_from="stage_3", weights=None
    )
    base = model.get_layer("convnext_tiny")
    assert trainable(base, "convnext_tiny_downsampling_block_2")
    assert trainable(base, "convnext_tiny_stage_3_block_0_layernorm")
    assert trainable(base, "convnext_tiny_stage_3_block_2_layer_scale")
    assert not trainable(base, "convnext_tiny_stage_2_block_8_depthwise_conv")
    assert not trainable(base, "convnext_tiny_downsampling_block_1")


@pytest.mark.parametrize("backbone", list(PREPROCESS_INPUT))
def test_the_adapter_is_the_applications_own_preprocessing(fe_models, grey, backbone):
    """adapter(patch) == [the application's built-in preprocessing layers] of its
    preprocess_input(patch x 255 on 3 channels)."""
    model = fe_models.get(backbone) or build_pretrained(2, backbone=backbone, weights=None)
    adapter = keras.Model(model.input, model.get_layer("preprocess").output)
    expected = PREPROCESS_INPUT[backbone](np.repeat(grey * 255.0, 3, axis=-1))
    spec = BACKBONES[backbone]
    if "include_preprocessing" in spec.options:  # preprocess_input is a pass-through
        own = spec.application(include_top=False, weights=None, input_shape=(150, 150, 3))
        stem = next(iter(spec.stages.values()))
        first = next(layer for layer in own.layers if layer.name.startswith(stem))
        expected = keras.Model(own.input, first.input)(expected)
    np.testing.assert_allclose(np.asarray(adapter(grey)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backbone", ["efficientnetv2b0", "convnext_tiny"])
def test_preprocessing_is_applied_once(fe_models, grey, backbone):
    """mammo's model == the application with its own preprocessing on 0..255 input."""
    model = fe_models[backbone]
    own = BACKBONES[backbone].application(
        include_top=False, weights=None, input_shape=(150, 150, 3)
    )
    own.set_weights(model.get_layer(backbone).get_weights())
    features = keras.Model(model.input, model.get_layer("pool").input)(grey)
    rgb = PREPROCESS_INPUT[backbone](np.repeat(grey * 255.0, 3, axis=-1))
    np.testing.assert_allclose(np.asarray(features), np.asarray(own(rgb)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_the_weights_file_is_the_one_keras_fetches(backbone, monkeypatch):
    """The file name, URL and hash the installed Keras application asks for."""
    from keras.src.utils import file_utils

    requested = {}

    def record(fname, origin, **kwargs):
        requested.update(fname=fname, origin=origin, file_hash=kwargs.get("file_hash"))
        raise OSError("recorded")

    monkeypatch.setattr(file_utils, "get_file", record)
    spec = BACKBONES[backbone]
    with pytest.raises(OSError, match="recorded"):
        spec.application(include_top=False, weights="imagenet", input_shape=(150, 150, 3))
    assert requested == {
        "fname": spec.weights_file,
        "origin": spec.weights_url,
        "file_hash": spec.weights_hash,
    }


@pytest.mark.parametrize("backbone", NEW)
def test_offline_imagenet_weights_name_the_file(backbone, tmp_path, monkeypatch):
    dead_proxy = "http://127.0.0.1:9"
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, dead_proxy)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    spec = BACKBONES[backbone]
    with pytest.raises(MammoError) as error:
        resolve_weights(backbone, "imagenet")
    message = str(error.value)
    assert spec.weights_file in message and spec.weights_url in message
    assert str(tmp_path / "keras" / "models") in message and "model.weights=null" in message


@pytest.mark.parametrize("backbone", ["efficientnetv2b0", "convnext_tiny"])
def test_weights_saved_with_keras_own_preprocessing_layers_load(backbone, tmp_path, grey):
    """Keras' ImageNet .h5 files come from the application with its preprocessing layers;
    they load into mammo's base, built without them (legacy .h5 loading by layer order)."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    spec = BACKBONES[backbone]
    own = spec.application(include_top=False, weights=None, input_shape=(150, 150, 3))
    path = tmp_path / f"{backbone}_notop.h5"
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, own)
    model = build_pretrained(2, backbone=backbone, weights=str(path), pooling="avg")
    for loaded, saved in zip(model.get_layer(backbone).weights, own.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(saved))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fe", "ft"])
@pytest.mark.parametrize("backbone", NEW)
def test_one_epoch_through_the_cli(pair_course, tmp_path, backbone, mode):
    """``mammo train model=<backbone>`` on 8 training pairs, random weights, one epoch."""
    from tests.helpers import FAST, read_metrics, run_folders, run_mammo

    overrides = (f"model={backbone}", f"model.mode={mode}", "augmentation=none")
    result = run_mammo(
        "train", "task=3.1", f"data.dir={pair_course}", *overrides, *FAST, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs")
    metrics = read_metrics(run)
    assert metrics["epochs_run"] == 1 and metrics["n_params"] == SIZES[backbone][0]
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    stage = BACKBONES[backbone].stages[compose("train", f"model={backbone}").model.unfreeze_from]
    unfrozen = [layer.name for layer in model.get_layer(backbone).layers if layer.trainable_weights]
    assert unfrozen[0].startswith(stage) if mode == "ft" else not unfrozen, unfrozen[:3]
