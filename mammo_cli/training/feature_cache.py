"""Training a head on cached features of a frozen base (feature extraction, SPEC 2-3).

In ``fe`` mode the base (input adapter + backbone, up to the ``flatten`` layer) never
changes, so when the training data is fixed (augmentation ``none`` or offline copies)
its features are computed once per run and only the head is trained, on those arrays,
through the shared :func:`~mammo_cli.training.fit.fit_model`. The head is made of the
full model's own layer objects, so training it trains the full model: after the fit
the full model holds the trained head and is saved and evaluated as usual.

The siamese model is split the same way inside its shared tower: the base gives the
``flatten`` features of the abnormality and of the baseline patch (two arrays), and the
head is the tower's ``hidden`` layer applied to each, their difference and the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from mammo_cli.config import TrainConfig
from mammo_cli.data.tasks import ModelInput, Samples
from mammo_cli.models.siamese import DIFFERENCE_LAYER, PAIR_INPUTS, TOWER_LAYER
from mammo_cli.training.augmentation import training_augmenter
from mammo_cli.training.fit import FitResult, fit_model, prediction_dataset

#: the layer whose output is the cached feature vector
FEATURES_LAYER = "flatten"


def frozen_base_split(model: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """``(base, head)`` sharing ``model``'s layers, split at ``flatten``; None unless the
    base has no trainable weights (models without a ``flatten`` layer are never split)."""
    names = [layer.name for layer in model.layers]
    if TOWER_LAYER in names:
        return _frozen_tower_split(model, names)
    if FEATURES_LAYER not in names:
        return None
    features = model.get_layer(FEATURES_LAYER)
    base = keras.Model(model.inputs, features.output, name=f"{model.name}_base")
    if base.trainable_weights:
        return None
    head_input = keras.Input(shape=features.output.shape[1:], name="features")
    x = head_input
    for layer in model.layers[names.index(FEATURES_LAYER) + 1 :]:
        x = layer(x)
    return base, keras.Model(head_input, x, name=f"{model.name}_head")


def _frozen_tower_split(
    model: keras.Model, names: list[str]
) -> tuple[keras.Model, keras.Model] | None:
    """The siamese model's (base, head), split at its tower's ``flatten``; None unless
    the tower below ``flatten`` is frozen."""
    tower = model.get_layer(TOWER_LAYER)
    tower_names = [layer.name for layer in tower.layers]
    if FEATURES_LAYER not in tower_names:
        return None
    features = tower.get_layer(FEATURES_LAYER)
    embed = keras.Model(tower.inputs, features.output, name=f"{model.name}_tower_base")
    if embed.trainable_weights:
        return None
    base = keras.Model(model.inputs, [embed(x) for x in model.inputs], name=f"{model.name}_base")
    tower_tail = tower.layers[tower_names.index(FEATURES_LAYER) + 1 :]
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
) -> FitResult:
    """Compute the base's features of ``train`` and ``val`` once, then ``fit_model`` the head
    (checkpointed and resumed as :func:`fit_model` says)."""
    batch_size = cfg.trainer.batch_size
    return fit_model(
        head,
        Samples(extract_features(base, train.inputs, batch_size, train.rows), train.labels),
        Samples(extract_features(base, val.inputs, batch_size, val.rows), val.labels),
        cfg,
        n_classes,
        extra_callbacks,
        checkpoint_dir,
        resume,
    )
