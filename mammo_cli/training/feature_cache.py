"""Training a head on the features of a frozen base, kept across runs (feature extraction).

In ``fe`` mode the base (input adapter + backbone, up to the features layer: ``flatten``,
or ``pool`` for global average pooling) never changes, so when the training data is
fixed (augmentation ``none`` or offline copies) only the head is trained, on the base's
features, through the shared :func:`~mammo_cli.training.fit.fit_model`. The head is made
of the full model's own layer objects, so training it trains the full model: after the
fit the full model holds the trained head and is saved and evaluated as usual.

The siamese model is split the same way inside its shared tower: the base gives the
features of the abnormality and of the baseline patch (two arrays), and the head is the
tower's ``hidden`` layer applied to each, their difference and the output.

Features are kept in the on-disk :class:`~mammo_cli.training.feature_store.FeatureStore`
(``<cache folder>/features/``), so every run, holdout split, sweep job and Optuna trial
that feeds the same patches to the same base reads them instead of recomputing them.
One entry holds the features of one whole input array; a split (``Samples.rows``) takes
its rows from it, so the k splits of a holdout share the entry of all training patches.
The entry's key (:func:`feature_key`) is the SHA-256 of

- the input, exactly as fed to the base: every array's dtype, shape and bytes (the
  stored patches, which the pipeline scales by their dtype; for offline augmentation the
  expanded array, so the draw of the augmented copies is covered by their pixels);
- the base: its Keras config (architecture, adapter layers, frozen flags, dtype policy)
  with layer names replaced by their position (Keras numbers unnamed layers per
  process), and the values of all its weights (so the backbone, the exact weights file
  and the adapter's constants are all covered);
- the output layout (float32, one array per base output, their shapes) and the Keras,
  TensorFlow and entry-format versions.

Anything that could change the features changes the key, so an entry can only be
served for the computation that produced it; a damaged entry fails its checksum and is
recomputed (:mod:`~mammo_cli.training.feature_store`). The batch size is not part of
the key: it only changes float round-off in the last bits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mammo_cli.config import TrainConfig
from mammo_cli.data.tasks import ModelInput, Samples
from mammo_cli.models.siamese import DIFFERENCE_LAYER, PAIR_INPUTS, TOWER_LAYER
from mammo_cli.training.augmentation import training_augmenter
from mammo_cli.training.feature_store import (
    FeatureStore,
    feature_cache_dir,
    update_with_array,
)
from mammo_cli.training.fit import FitResult, fit_model, prediction_dataset

#: the layers whose output is the cached feature vector (``model.pooling``: flatten | avg)
FEATURES_LAYERS = ("flatten", "pool")
#: changes whenever the meaning of an entry changes: old entries then simply miss
ENTRY_FORMAT = "mammo-features-1"


def _features_layer(names: Sequence[str]) -> str | None:
    return next((name for name in FEATURES_LAYERS if name in names), None)


def frozen_base_split(model: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """``(base, head)`` sharing ``model``'s layers, split at the features layer; None
    unless the base has no trainable weights (models without one are never split)."""
    names = [layer.name for layer in model.layers]
    if TOWER_LAYER in names:
        return _frozen_tower_split(model, names)
    features_name = _features_layer(names)
    if features_name is None:
        return None
    features = model.get_layer(features_name)
    base = keras.Model(model.inputs, features.output, name=f"{model.name}_base")
    if base.trainable_weights:
        return None
    head_input = keras.Input(shape=features.output.shape[1:], name="features")
    x = head_input
    for layer in model.layers[names.index(features_name) + 1 :]:
        x = layer(x)
    return base, keras.Model(head_input, x, name=f"{model.name}_head")


def _frozen_tower_split(
    model: keras.Model, names: list[str]
) -> tuple[keras.Model, keras.Model] | None:
    """The siamese model's (base, head), split at its tower's features layer; None
    unless the tower below it is frozen."""
    tower = model.get_layer(TOWER_LAYER)
    tower_names = [layer.name for layer in tower.layers]
    features_name = _features_layer(tower_names)
    if features_name is None:
        return None
    features = tower.get_layer(features_name)
    embed = keras.Model(tower.inputs, features.output, name=f"{model.name}_tower_base")
    if embed.trainable_weights:
        return None
    base = keras.Model(model.inputs, [embed(x) for x in model.inputs], name=f"{model.name}_base")
    tower_tail = tower.layers[tower_names.index(features_name) + 1 :]
    head_inputs = [
        keras.Input(shape=features.output.shape[1:], name=f"{name}_features")
        for name in PAIR_INPUTS
    ]
    embeddings = []
    for x in head_inputs:
        for layer in tower_tail:
            x = layer(x)
        embeddings.append(x)
    x = model.get_layer(DIFFERENCE_LAYER)(embeddings)
    for layer in model.layers[names.index(DIFFERENCE_LAYER) + 1 :]:
        x = layer(x)
    return base, keras.Model(head_inputs, x, name=f"{model.name}_head")


def cacheable_split(model: keras.Model, cfg: TrainConfig) -> tuple[keras.Model, keras.Model] | None:
    """The (base, head) split when the head can train on cached features, else None:
    a frozen base and no on-the-fly augmentation."""
    if training_augmenter(cfg.augmentation, cfg.seed) is not None:
        return None
    return frozen_base_split(model)


def extract_features(
    base: keras.Model, images: ModelInput, batch_size: int, rows: np.ndarray | None = None
) -> ModelInput:
    """The base's output for every sample (for ``images[rows]`` with ``rows``), float32,
    in order (a tuple of arrays for a base with several outputs, e.g. the siamese pair's
    two feature vectors)."""
    features = base.predict(prediction_dataset(images, batch_size, rows), verbose=0)
    if isinstance(features, list | tuple):
        return tuple(np.asarray(part, dtype=np.float32) for part in features)  # type: ignore[return-value]
    return np.asarray(features, dtype=np.float32)


def _layer_names(model: keras.Model) -> list[str]:
    """Names of ``model`` and of all its layers, nested models included, in order."""
    names = [model.name]
    for layer in model.layers:
        names.extend(_layer_names(layer) if isinstance(layer, keras.Model) else [layer.name])
    return names


def _positional(value: Any, alias: dict[str, str]) -> Any:
    """``value`` (a Keras config) with every layer name replaced by its alias."""
    if isinstance(value, dict):
        return {key: _positional(item, alias) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_positional(item, alias) for item in value]
    if isinstance(value, str):
        return alias.get(value, value)
    return value


def base_fingerprint(base: keras.Model) -> str:
    """SHA-256 of ``base``'s architecture (its config, layer names made positional) and
    of the values of all its weights, trainable or not."""
    alias: dict[str, str] = {}
    for name in _layer_names(base):
        alias.setdefault(name, f"#{len(alias)}")
    config = _positional(base.get_config(), alias)
    hasher = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    for weight in base.weights:
        update_with_array(hasher, keras.ops.convert_to_numpy(weight))
    return hasher.hexdigest()


def feature_key(base: keras.Model, inputs: ModelInput) -> str:
    """The store key of ``base``'s features of ``inputs`` (whole arrays); see the module
    docstring for what it covers."""
    layout = {
        "format": ENTRY_FORMAT,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "base": base_fingerprint(base),
        "outputs": [list(output.shape) for output in base.outputs],
        "dtype": "float32",
    }
    hasher = hashlib.sha256(json.dumps(layout, sort_keys=True).encode())
    for part in tf.nest.flatten(inputs):
        update_with_array(hasher, np.asarray(part))
    return hasher.hexdigest()


@dataclasses.dataclass
class FeatureCacheStats:
    """What the feature cache did in one run (metrics.json records it)."""

    #: the features folder, or None when the cache is off
    folder: str | None
    #: input arrays whose features were read from the folder / had to be computed
    hits: int = 0
    misses: int = 0
    #: wall-clock seconds spent getting features: hashing, reading, computing, writing
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The stats as plain JSON values (seconds rounded to ms)."""
        return {**dataclasses.asdict(self), "seconds": round(self.seconds, 3)}


class FeatureCache:
    """Features of frozen bases: read from ``store`` when there, else computed and stored
    (``store`` None: always computed, nothing written). :attr:`stats` counts both.

    The features last returned are kept in memory too, so the training and validation
    splits of one input (the same array object) get them once.
    """

    def __init__(self, store: FeatureStore | None) -> None:
        self.store = store
        self.stats = FeatureCacheStats(folder=None if store is None else str(store.folder))
        #: (base, inputs, their features) of the last call
        self._recent: tuple[keras.Model, ModelInput, ModelInput] | None = None

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> FeatureCache:
        """The cache a run with ``cfg`` uses: ``<cache folder>/features`` bounded to
        ``data.feature_cache_max_gb`` (default 5), or none with ``data.feature_cache=false``."""
        if not cfg.data.feature_cache:
            return cls(None)
        folder = feature_cache_dir(cfg.data.cache_dir)
        return cls(FeatureStore(folder, int(cfg.data.feature_cache_max_gb * 1e9)))

    def features(self, base: keras.Model, inputs: ModelInput, batch_size: int) -> ModelInput:
        """``base``'s float32 features of every sample of ``inputs`` (arrays or tensors)."""
        recent = self._recent
        if recent is not None and recent[0] is base and recent[1] is inputs:
            return recent[2]
        started = time.perf_counter()
        features = self._stored_or_computed(base, inputs, batch_size)
        self.stats.seconds += time.perf_counter() - started
        self._recent = (base, inputs, features)
        return features

    def _stored_or_computed(
        self, base: keras.Model, inputs: ModelInput, batch_size: int
    ) -> ModelInput:
        if self.store is None:
            self.stats.misses += 1
            return extract_features(base, inputs, batch_size)
        key = feature_key(base, inputs)
        stored = self.store.load(key)
        if stored is not None:
            self.stats.hits += 1
            return stored if len(stored) > 1 else stored[0]
        self.stats.misses += 1
        features = extract_features(base, inputs, batch_size)
        self.store.save(key, tf.nest.flatten(features))
        return features

    def samples(self, base: keras.Model, samples: Samples, batch_size: int) -> Samples:
        """``samples`` with the features of their whole input in place of the patches
        (same labels and rows: a split indexes the features of all the patches)."""
        return Samples(self.features(base, samples.inputs, batch_size), *samples[1:])


@dataclasses.dataclass(frozen=True)
class HeadFitResult(FitResult):
    """A head fit on cached features: the fit's result and what the cache did."""

    feature_cache: FeatureCacheStats


def fit_head_on_features(
    base: keras.Model,
    head: keras.Model,
    train: Samples,
    val: Samples,
    cfg: TrainConfig,
    n_classes: int,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    cache: FeatureCache | None = None,
) -> HeadFitResult:
    """Get the base's features of ``train`` and ``val`` from ``cache`` (default:
    :meth:`FeatureCache.for_config`), then ``fit_model`` the head on them (checkpointed
    and resumed as :func:`fit_model` says)."""
    cache = FeatureCache.for_config(cfg) if cache is None else cache
    batch_size = cfg.trainer.batch_size
    fit = fit_model(
        head,
        cache.samples(base, train, batch_size),
        cache.samples(base, val, batch_size),
        cfg,
        n_classes,
        extra_callbacks,
        checkpoint_dir,
        resume,
    )
    fields = {field.name: getattr(fit, field.name) for field in dataclasses.fields(fit)}
    return HeadFitResult(**fields, feature_cache=cache.stats)


def predict_on_features(
    base: keras.Model,
    head: keras.Model,
    samples: Samples,
    batch_size: int,
    cache: FeatureCache,
) -> np.ndarray:
    """The full model's class probabilities (float64) of ``samples``, computed by the
    head on the base's features from ``cache`` (equal to ``model.predict`` up to float
    round-off)."""
    features = cache.samples(base, samples, batch_size)
    dataset = prediction_dataset(features.inputs, batch_size, features.rows)
    probs = head.predict(dataset, verbose=0)
    return np.asarray(probs, dtype=np.float64)
