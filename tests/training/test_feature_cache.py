"""Backbone features kept across runs: the head trained on them equals the uncached
training; the on-disk entries are keyed, checksummed, atomic and bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from mammo_cli.config import (
    AugmentationConfig,
    PretrainedModelConfig,
    SiameseModelConfig,
    TrainConfig,
)
from mammo_cli.data.tasks import Samples
from mammo_cli.models.registry import build_model
from mammo_cli.models.scratch import build_scratch
from mammo_cli.training.feature_cache import (
    FeatureCache,
    cacheable_split,
    fit_head_on_features,
    frozen_base_split,
    predict_on_features,
)
from mammo_cli.training.feature_store import (
    FeatureStore,
    clear_feature_cache,
    feature_cache_dir,
)
from mammo_cli.training.fit import fit_model, seed_everything

GB = 10**9


def config(cache_dir: Path, **model) -> TrainConfig:
    cfg = OmegaConf.structured(TrainConfig)
    cfg.model = OmegaConf.structured(PretrainedModelConfig(weights=None, **model))
    cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.progress = 2, 8, False
    cfg.optimizer.learning_rate = 1e-4
    cfg.data.cache_dir = str(cache_dir)
    return cfg


def data(n: int, seed: int, shape: tuple[int, ...] = (150, 150, 1)) -> Samples:
    rng = np.random.default_rng(seed)
    return Samples(rng.random((n, *shape), dtype=np.float32), np.arange(n) % 2)


def tiny_model(seed: int, features: str = "flatten") -> keras.Model:
    """A frozen conv base (16x16 patches) and a small head, split at ``features``."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(16, 16, 1))  # unnamed: Keras numbers it per build
    x = keras.layers.Conv2D(4, 3, activation="relu", trainable=False)(inputs)
    if features == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="tiny")


def test_warm_cache_trains_the_same_head_as_the_cold_cache_and_no_cache(tmp_path):
    """VGG16 fe, the task 3.2 head: the first run stores the features, the second reads
    them; histories and predictions agree with each other and with the full model's
    training to 1e-5 (float round-off of the base computed in other batches)."""
    cfg = config(tmp_path, mode="fe", dropout=0.5, output_activation="sigmoid")
    cfg.class_weights.kind, cfg.class_weights.weights = "manual", [1.0, 1.25]
    patches, labels, _ = data(32, 0)
    train = Samples(patches, labels[:24], np.arange(24))
    val = Samples(patches, labels[24:], np.arange(24, 32))
    test = data(6, 2).inputs

    seed_everything(cfg.seed)
    uncached = build_model(cfg.model, 2)
    plain = fit_model(uncached, train, val, cfg, 2)
    expected = uncached.predict(test, verbose=0)

    results = []
    for run in ("cold", "warm"):
        seed_everything(cfg.seed)
        model = build_model(cfg.model, 2)
        split = cacheable_split(model, cfg)
        assert split is not None
        fit = fit_head_on_features(*split, train, val, cfg, 2)
        # train and val share one input: its features are got once, whole, and indexed
        assert (fit.feature_cache.hits, fit.feature_cache.misses) == (
            (0, 1) if run == "cold" else (1, 0)
        ), run
        assert fit.epochs_run == plain.epochs_run == 2
        for key, values in plain.history.items():
            np.testing.assert_allclose(fit.history[key], values, rtol=1e-5, err_msg=key)
        np.testing.assert_allclose(model.predict(test, verbose=0), expected, atol=1e-5)
        results.append(fit.history)
    for key, values in results[0].items():
        np.testing.assert_allclose(results[1][key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    assert results[0].keys() == plain.history.keys()
    assert fit.feature_cache.folder == str(tmp_path / "features")
    assert len(list((tmp_path / "features").glob("*.npz"))) == 1


def test_only_a_frozen_base_with_static_training_data_is_cached(tmp_path):
    assert frozen_base_split(build_model(config(tmp_path, mode="ft").model, 2)) is None
    assert frozen_base_split(build_scratch(2)) is None
    cfg = config(tmp_path, mode="fe")
    model = build_model(cfg.model, 2)
    base, head = frozen_base_split(model)
    assert base.output_shape == (None, 8192) and head.count_params() == 2_097_922
    cfg.augmentation = OmegaConf.merge(
        OmegaConf.structured(AugmentationConfig), {"name": "flip", "horizontal_flip": True}
    )
    assert cacheable_split(model, cfg) is None
    cfg.augmentation.offline_copies = 2
    assert cacheable_split(model, cfg) is not None


def test_a_pool_features_layer_splits_like_flatten():
    """``model.pooling=avg`` names the features layer ``pool``."""
    model = tiny_model(0, features="pool")
    base, head = frozen_base_split(model)
    assert base.output_shape == (None, 4) and head.count_params() == 4 * 8 + 8 + 8 * 2 + 2
    x = data(5, 0, (16, 16, 1)).inputs
    np.testing.assert_allclose(
        head.predict(base.predict(x, verbose=0), verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_siamese_split_caches_both_towers_and_shares_the_head(tmp_path):
    """The frozen siamese model splits inside its tower; the head trained on the cached
    features is the full model's own layers (ft: tests/models/test_siamese.py)."""
    cfg = config(tmp_path, mode="fe")
    cfg.model = OmegaConf.structured(SiameseModelConfig(weights=None))
    cfg.trainer.epochs = 1
    model = build_model(cfg.model, 2)
    base, head = cacheable_split(model, cfg)
    assert base.output_shape == [(None, 8192), (None, 8192)]
    assert head.count_params() == 2_097_922
    (a, labels, _), (b, _, _) = data(8, 0), data(8, 1)
    before = model.predict((a, b), verbose=0)
    train, val = Samples((a, b), labels), Samples((a, b), labels[:4], np.arange(4))
    fit = fit_head_on_features(base, head, train, val, cfg, 2)
    after = model.predict((a, b), verbose=0)
    assert not np.allclose(before, after)  # training the head trained the full model
    features = base.predict((a, b), verbose=0)
    np.testing.assert_allclose(head.predict(features, verbose=0), after, atol=1e-5)
    # both towers' features are one entry; val (another tuple of the same patches) reads
    # it back, and so does the prediction, which equals the model's
    assert (fit.feature_cache.hits, fit.feature_cache.misses) == (1, 1)
    cache = FeatureCache.for_config(cfg)
    probs = predict_on_features(base, head, Samples((a, b), labels), 8, cache)
    assert (cache.stats.hits, cache.stats.misses) == (1, 0)
    np.testing.assert_allclose(probs, after, atol=1e-5)


def test_changed_patches_or_weights_miss_and_renamed_layers_hit(tmp_path):
    store = FeatureStore(tmp_path, GB)
    x = data(6, 0, (16, 16, 1)).inputs
    base, _ = frozen_base_split(tiny_model(0))

    def counts(model: keras.Model, inputs: np.ndarray) -> tuple[int, int]:
        cache = FeatureCache(store)
        features = cache.features(model, inputs, 4)
        scaled = inputs / 255 if inputs.dtype == np.uint8 else inputs  # as the pipeline does
        np.testing.assert_allclose(features, model.predict(scaled, verbose=0), atol=1e-5)
        return cache.stats.hits, cache.stats.misses

    assert counts(base, x) == (0, 1)
    assert counts(base, x.copy()) == (1, 0)  # the content counts, not the object
    # the same weights in a fresh build (its unnamed layers get other names): a hit
    assert counts(frozen_base_split(tiny_model(0))[0], x) == (1, 0)
    changed = x.copy()
    changed[3, 5, 5, 0] += 0.01
    assert counts(base, changed) == (0, 1)
    assert counts(base, x[:5]) == (0, 1)
    assert counts(base, (x * 255).astype(np.uint8)) == (0, 1)  # another dtype
    assert counts(frozen_base_split(tiny_model(1))[0], x) == (0, 1)  # other weights
    kernel = base.get_layer(index=1).kernel
    kernel.assign(kernel.numpy() * 1.001)
    assert counts(base, x) == (0, 1)
    assert counts(base, x) == (1, 0)


def test_a_corrupt_or_partial_entry_is_recomputed(tmp_path):
    store = FeatureStore(tmp_path, GB)
    x = data(6, 0, (16, 16, 1)).inputs
    base, _ = frozen_base_split(tiny_model(0))
    expected = FeatureCache(store).features(base, x, 4)
    (entry,) = tmp_path.glob("*.npz")
    original = entry.read_bytes()
    middle = bytearray(original)
    middle[len(middle) // 2] ^= 0x01  # inside the feature bytes
    damaged = {
        "flipped byte": bytes(middle),
        "truncated": original[: len(original) // 2],
        "empty": b"",
        "not an archive": b"\x93NUMPY garbage",
    }
    for name, content in damaged.items():
        entry.write_bytes(content)
        cache = FeatureCache(store)
        np.testing.assert_array_equal(cache.features(base, x, 4), expected, err_msg=name)
        assert (cache.stats.hits, cache.stats.misses) == (0, 1), name
        assert entry.read_bytes() == original, name  # rewritten whole
    # the checksum covers the arrays and the key: other arrays under the same checksum
    # in a valid archive fail, and so does a valid entry copied under another name
    (tmp_path / "another-key.npz").write_bytes(original)
    assert store.load("another-key") is None
    with np.load(entry) as stored:
        features, checksum = stored["part_0"], stored["checksum"]
    np.savez(entry, part_0=features + 1, checksum=checksum)
    assert store.load(entry.stem) is None


WRITER = """
import sys
import numpy as np
from mammo_cli.training.feature_store import FeatureStore

store = FeatureStore(sys.argv[1], 10**9)
value = float(sys.argv[2])
arrays = [np.full((64, 4096), value, np.float32), np.full((64, 8), value, np.float32)]
for _ in range(int(sys.argv[3])):
    assert store.save("same-entry", arrays)
"""


def test_processes_filling_one_entry_at_once_never_leave_it_corrupt(tmp_path):
    """Two writers store different arrays under one key 30 times each while this process
    reads it: every read is whole (one writer's arrays), never a mix or a damaged file."""
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), value, "30"])
        for value in ("1", "2")
    ]
    store = FeatureStore(tmp_path, GB)
    reads = 0
    while any(writer.poll() is None for writer in writers):
        arrays = store.load("same-entry")
        if arrays is not None:
            reads += 1
            value = arrays[0][0, 0]
            assert value in (1.0, 2.0)
            assert all(np.all(part == value) for part in arrays)
            assert [part.shape for part in arrays] == [(64, 4096), (64, 8)]
    assert [writer.wait() for writer in writers] == [0, 0]
    assert reads > 0 and store.load("same-entry") is not None
    assert [p.name for p in tmp_path.iterdir()] == ["same-entry.npz"]  # no temp file left


def test_least_recently_used_entries_go_beyond_the_bound(tmp_path):
    entry = [np.zeros(10_000, np.float32)]  # 40 kB each
    store = FeatureStore(tmp_path, 130_000)  # three entries fit, four do not
    for age, key in enumerate(("a", "b", "c")):
        assert store.save(key, entry)
        os.utime(store.path(key), (time.time() - 100 + age,) * 2)
    assert store.load("a") is not None  # used now: "b" is the least recently used
    assert store.save("d", entry)
    assert sorted(p.stem for p in tmp_path.glob("*.npz")) == ["a", "c", "d"]
    assert store.size_bytes() <= 130_000
    assert not store.save("huge", [np.zeros(100_000, np.float32)])  # over the bound alone
    leftover = tmp_path / ".d.npz.part.npz"  # a killed writer's temporary file
    leftover.write_bytes(b"x")
    os.utime(leftover, (time.time() - 7200,) * 2)
    store.evict()
    assert not leftover.exists()

    cache_dir = tmp_path.parent / "cache"
    store = FeatureStore(feature_cache_dir(cache_dir), 10**6)
    store.save("a", entry)
    store.save("b", entry)
    (cache_dir / "demo").mkdir()
    files, removed = clear_feature_cache(cache_dir)
    assert files == 2 and removed > 80_000
    assert list(store.folder.iterdir()) == [] and (cache_dir / "demo").is_dir()
    assert clear_feature_cache(cache_dir) == (0, 0)


def test_the_cache_folder_and_switch_come_from_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_CACHE", str(tmp_path / "env"))
    cfg = OmegaConf.structured(TrainConfig)
    default = FeatureCache.for_config(cfg)
    assert default.store.folder == tmp_path / "env" / "features"
    assert default.store.max_bytes == 5 * GB
    cfg.data.cache_dir, cfg.data.feature_cache_max_gb = str(tmp_path), 0.5
    chosen = FeatureCache.for_config(cfg)
    assert chosen.store.folder == tmp_path / "features" and chosen.store.max_bytes == GB // 2
    cfg.data.feature_cache = False
    off = FeatureCache.for_config(cfg)
    assert off.store is None and off.stats.as_dict()["folder"] is None
    base, _ = frozen_base_split(tiny_model(0))
    x = data(4, 0, (16, 16, 1)).inputs
    off.features(base, x, 4)
    off.features(base, x, 4)  # the same object again: kept in memory
    assert (off.stats.hits, off.stats.misses) == (0, 1)


@pytest.mark.parametrize("features", ["flatten", "pool"])
def test_prediction_on_cached_features_equals_the_full_model(tmp_path, features):
    model = tiny_model(0, features)
    base, head = frozen_base_split(model)
    patches, labels, _ = data(10, 0, (16, 16, 1))
    rows = np.array([7, 2, 5])
    expected = model.predict(patches[rows], verbose=0)
    cache = FeatureCache(FeatureStore(tmp_path, GB))
    for _ in range(2):
        probs = predict_on_features(base, head, Samples(patches, labels[rows], rows), 4, cache)
        assert probs.dtype == np.float64
        np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert (cache.stats.hits, cache.stats.misses) == (0, 1)
