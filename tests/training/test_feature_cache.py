"""Cached backbone features: the head trained on them equals the uncached training."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from mammo_cli.config import (
    AugmentationConfig,
    PretrainedModelConfig,
    SiameseModelConfig,
    TrainConfig,
)
from mammo_cli.data.tasks import Samples
from mammo_cli.models import build_model
from mammo_cli.models.scratch import build_scratch
from mammo_cli.training.feature_cache import (
    cacheable_split,
    fit_head_on_features,
    frozen_base_split,
)
from mammo_cli.training.fit import fit_model, seed_everything


def config(**model) -> TrainConfig:
    cfg = OmegaConf.structured(TrainConfig)
    cfg.model = OmegaConf.structured(PretrainedModelConfig(weights=None, **model))
    cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.progress = 2, 8, False
    cfg.optimizer.learning_rate = 1e-4
    return cfg


def data(n: int, seed: int) -> Samples:
    rng = np.random.default_rng(seed)
    return Samples(rng.random((n, 150, 150, 1), dtype=np.float32), np.arange(n) % 2)


def test_cached_head_training_matches_the_uncached_path():
    """Same seed, same data: histories within rtol 1e-4 and predictions within atol 1e-5
    (the only difference is float round-off of the base computed in another batch)."""
    cfg = config(mode="fe", dropout=0.5, output_activation="sigmoid")
    cfg.class_weights.kind, cfg.class_weights.weights = "manual", [1.0, 1.25]
    train, val, test = data(24, 0), data(8, 1), data(6, 2)[0]

    seed_everything(cfg.seed)
    uncached = build_model(cfg.model, 2)
    plain = fit_model(uncached, train, val, cfg, 2)

    seed_everything(cfg.seed)
    cached = build_model(cfg.model, 2)
    split = cacheable_split(cached, cfg)
    assert split is not None
    fast = fit_head_on_features(*split, train, val, cfg, 2)

    assert fast.epochs_run == plain.epochs_run == 2
    for key, values in plain.history.items():
        np.testing.assert_allclose(fast.history[key], values, rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(
        cached.predict(test, verbose=0), uncached.predict(test, verbose=0), atol=1e-5
    )


def test_only_a_frozen_base_with_static_training_data_is_cached():
    assert frozen_base_split(build_model(config(mode="ft").model, 2)) is None
    assert frozen_base_split(build_scratch(2)) is None
    cfg = config(mode="fe")
    model = build_model(cfg.model, 2)
    base, head = frozen_base_split(model)
    assert base.output_shape == (None, 8192) and head.count_params() == 2_097_922
    cfg.augmentation = OmegaConf.merge(
        OmegaConf.structured(AugmentationConfig), {"name": "flip", "horizontal_flip": True}
    )
    assert cacheable_split(model, cfg) is None
    cfg.augmentation.offline_copies = 2
    assert cacheable_split(model, cfg) is not None


def test_siamese_split_caches_both_towers_and_shares_the_head():
    """The frozen siamese model splits inside its tower; the head trained on the cached
    features is the full model's own layers (ft: tests/models/test_siamese.py)."""
    cfg = config(mode="fe")
    cfg.model = OmegaConf.structured(SiameseModelConfig(weights=None))
    cfg.trainer.epochs = 1
    model = build_model(cfg.model, 2)
    base, head = cacheable_split(model, cfg)
    assert base.output_shape == [(None, 8192), (None, 8192)]
    assert head.count_params() == 2_097_922
    (a, labels, _), (b, _, _) = data(8, 0), data(8, 1)
    before = model.predict((a, b), verbose=0)
    train, val = Samples((a, b), labels), Samples((a, b), labels[:4], np.arange(4))
    fit_head_on_features(base, head, train, val, cfg, 2)
    after = model.predict((a, b), verbose=0)
    assert not np.allclose(before, after)  # training the head trained the full model
    features = base.predict((a, b), verbose=0)
    np.testing.assert_allclose(head.predict(features, verbose=0), after, atol=1e-5)
