"""Training a head on cached features of a frozen base (feature extraction, SPEC 2-3).

In ``fe`` mode the base (input adapter + backbone, up to the ``flatten`` layer) never
changes, so when the training data is fixed (augmentation ``none`` or offline copies)
its features are computed once per run and only the head is trained, on those arrays,
through the shared :func:`~mammo_cli.training.fit.fit_model`. The head is made of the
full model's own layer objects, so training it trains the full model: after the fit
the full model holds the trained head and is saved and evaluated as usual.
"""

from __future__ import annotations

import keras
import numpy as np

from mammo_cli.config import TrainConfig
from mammo_cli.training.augmentation import training_augmenter
from mammo_cli.training.fit import FitResult, fit_model

#: the layer whose output is the cached feature vector
FEATURES_LAYER = "flatten"


def frozen_base_split(model: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """``(base, head)`` sharing ``model``'s layers, split at ``flatten``; None unless the
    base has no trainable weights (models without a ``flatten`` layer are never split)."""
    names = [layer.name for layer in model.layers]
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


def cacheable_split(model: keras.Model, cfg: TrainConfig) -> tuple[keras.Model, keras.Model] | None:
    """The (base, head) split when the head can train on cached features, else None:
    a frozen base and no on-the-fly augmentation."""
    if training_augmenter(cfg.augmentation, cfg.seed) is not None:
        return None
    return frozen_base_split(model)


def extract_features(base: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The base's output for every image, float32, in input order."""
    return np.asarray(base.predict(images, batch_size=batch_size, verbose=0), dtype=np.float32)


def fit_head_on_features(
    base: keras.Model,
    head: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    cfg: TrainConfig,
    n_classes: int,
) -> FitResult:
    """Compute the base's features of ``train`` and ``val`` once, then ``fit_model`` the head."""
    batch_size = cfg.trainer.batch_size
    train_features = extract_features(base, train[0], batch_size)
    val_features = extract_features(base, val[0], batch_size)
    return fit_model(head, (train_features, train[1]), (val_features, val[1]), cfg, n_classes)
