"""Augmentation of the training data with Keras preprocessing layers: on the fly or offline.

The presets mirror the study's ``ImageDataGenerator`` settings (SPEC 3):

- ``mass_calc``: rotation up to 40 degrees, width/height shift 0.2, zoom 0.2, shear 0.2
  (degrees, as ImageDataGenerator reads it), horizontal flip, nearest fill;
- ``benign_malignant``: rotations by multiples of 90 degrees, shift/zoom/shear 0.2,
  no flip, reflect fill.

The augmenter runs inside the tf.data pipeline on whole batches (graph code, no Python
per image) and only ever touches training batches. ``offline_x3`` (the study's recipe
for the pretrained models) instead expands the training split once, before training, to
the originals plus two augmented copies of each patch (``offline_copies``).

For the siamese (abnormality, baseline) pairs both patches of a pair are augmented,
each with its own random transform: the baseline is other tissue cut next to the
lesion, so there is no pixel correspondence that a shared transform would keep.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from mammo_cli.config import AugmentationConfig
from mammo_cli.data.tasks import ModelInput
from mammo_cli.errors import MammoError

FILL_MODES = ("nearest", "reflect", "constant", "wrap")


class RandomRotate90(layers.Layer):
    """Rotate each image of a batch by a random multiple of 90 degrees (tf.data only)."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def call(self, images, training=True):
        if not training:
            return images
        turns = tf.random.uniform((tf.shape(images)[0],), 0, 4, dtype=tf.int32, seed=self.seed)
        return tf.map_fn(
            lambda args: tf.image.rot90(args[0], args[1]),
            (images, turns),
            fn_output_signature=images.dtype,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def build_augmenter(cfg: AugmentationConfig, seed: int) -> keras.Sequential | None:
    """A ``keras.Sequential`` of preprocessing layers for ``cfg``, or None for no augmentation."""
    if cfg.fill_mode not in FILL_MODES:
        raise MammoError(
            f"augmentation.fill_mode={cfg.fill_mode}; expected one of {', '.join(FILL_MODES)}"
        )
    fill = {"fill_mode": cfg.fill_mode}
    steps: list[layers.Layer] = []
    if cfg.rotate_90:
        steps.append(RandomRotate90(seed=seed))
    if cfg.rotation_degrees:
        steps.append(layers.RandomRotation(cfg.rotation_degrees / 360.0, seed=seed + 1, **fill))
    if cfg.width_shift or cfg.height_shift:
        steps.append(
            layers.RandomTranslation(cfg.height_shift, cfg.width_shift, seed=seed + 2, **fill)
        )
    if cfg.zoom:
        steps.append(layers.RandomZoom(cfg.zoom, cfg.zoom, seed=seed + 3, **fill))
    if cfg.shear_degrees:
        # ImageDataGenerator shears along x by an angle; RandomShear takes the matrix term.
        factor = math.sin(math.radians(cfg.shear_degrees))
        steps.append(layers.RandomShear(x_factor=factor, y_factor=0.0, seed=seed + 4, **fill))
    if cfg.horizontal_flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed + 5))
    if not steps:
        return None
    return keras.Sequential(steps, name=f"augment_{cfg.name}")


def training_augmenter(cfg: AugmentationConfig, seed: int) -> keras.Sequential | None:
    """The on-the-fly augmenter for training batches; None when the split is expanded offline."""
    return None if cfg.offline_copies else build_augmenter(cfg, seed)


def expand_offline(
    images: ModelInput, labels: np.ndarray, cfg: AugmentationConfig, seed: int
) -> tuple[ModelInput, np.ndarray]:
    """The originals followed by ``cfg.offline_copies`` augmented copies of each patch.

    Only ever called on the training split. The same ``seed`` gives the same copies;
    with ``offline_copies == 0`` the arrays are returned unchanged. For pairs (a tuple
    of arrays) both members are expanded, each patch transformed independently.
    """
    copies = cfg.offline_copies
    if copies < 0:
        raise MammoError(f"augmentation.offline_copies={copies}; expected 0 or more")
    if copies == 0:
        return images, labels
    augmenter = build_augmenter(cfg, seed)
    if augmenter is None:
        raise MammoError(
            f"augmentation.offline_copies={copies} but augmentation {cfg.name} has no "
            "transform (set rotation_degrees, shifts, zoom, shear or flips)"
        )

    def expand(patches: np.ndarray) -> np.ndarray:
        n = len(patches)
        expanded = np.empty((n * (copies + 1), *patches.shape[1:]), dtype=np.float32)
        expanded[:n] = patches
        batch = 256
        for copy in range(1, copies + 1):
            for start in range(0, n, batch):
                chunk = tf.convert_to_tensor(patches[start : start + batch], dtype=tf.float32)
                stop = copy * n + start + len(chunk)
                expanded[copy * n + start : stop] = augmenter(chunk, training=True).numpy()
        return expanded

    expanded = tuple(map(expand, images)) if isinstance(images, tuple) else expand(images)
    return expanded, np.tile(labels, copies + 1)
