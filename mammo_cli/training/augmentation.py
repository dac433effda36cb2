"""Augmentation of the training data, ImageDataGenerator's transforms in the graph: on the
fly or offline.

The presets mirror the study's ``ImageDataGenerator`` settings (study 5.1 and 5.2):

- ``mass_calc``: rotation up to 40 degrees, width/height shift 0.2, zoom 0.2, shear 0.2
  (degrees, as ImageDataGenerator reads it), horizontal flip, nearest fill;
- ``benign_malignant``: rotations by multiples of 90 degrees, shift/zoom/shear 0.2,
  no flip, reflect fill.

The augmenter (:class:`StudyAugmentation`) composes each image's rotation, shift, shear,
zoom and flip into one matrix, as ImageDataGenerator does, and resamples once with
``keras.ops.image.affine_transform``. It runs inside the tf.data pipeline on whole
batches (graph code, no Python per image) and only ever touches training batches.
``offline_x3`` (the study's recipe for the pretrained models) instead expands the
training split once, before training, to the originals plus two augmented copies of
each patch (``offline_copies``).

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
from mammo_cli.data.course import aligned_empty, to_model_input
from mammo_cli.data.tasks import ModelInput


def _matrices(*rows: list) -> tf.Tensor:
    """(N, 3, 3) matrices from three rows of three (N,) tensors or scalars each."""
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def study_transforms(
    theta: tf.Tensor,
    shift_x: tf.Tensor,
    shift_y: tf.Tensor,
    shear: tf.Tensor,
    zoom_x: tf.Tensor,
    zoom_y: tf.Tensor,
    flip: tf.Tensor,
    quarter_turns: tf.Tensor,
    size: int,
) -> tf.Tensor:
    """The (N, 8) transforms of ``keras.ops.image.affine_transform`` that do, in one
    resampling, what ImageDataGenerator does to each image in several steps.

    As ``apply_affine_transform`` builds it: rotation (``theta`` degrees, after
    ``quarter_turns`` exact right angles) @ shift (pixels along columns ``x`` and rows
    ``y``) @ shear (degrees) @ zoom, about the image centre, mapping output to input
    pixel coordinates; then a horizontal flip of the result where ``flip`` is 1. All
    arguments but ``size`` are (N,) float32 tensors (``quarter_turns`` int32).
    """
    one, zero = tf.ones_like(theta), tf.zeros_like(theta)
    turn_cos = tf.gather([1.0, 0.0, -1.0, 0.0], quarter_turns)  # exact right angles
    turn_sin = tf.gather([0.0, 1.0, 0.0, -1.0], quarter_turns)
    angle, shear = theta * (math.pi / 180.0), shear * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotation = _matrices(
        [turn_cos * cos - turn_sin * sin, -(turn_sin * cos + turn_cos * sin), zero],
        [turn_sin * cos + turn_cos * sin, turn_cos * cos - turn_sin * sin, zero],
        [zero, zero, one],
    )
    shift = _matrices([one, zero, shift_x], [zero, one, shift_y], [zero, zero, one])
    shearing = _matrices(
        [one, -tf.sin(shear), zero], [zero, tf.cos(shear), zero], [zero, zero, one]
    )
    zoom = _matrices([zoom_x, zero, zero], [zero, zoom_y, zero], [zero, zero, one])
    centre = size / 2 - 0.5
    to_centre = _matrices([one, zero, centre * one], [zero, one, centre * one], [zero, zero, one])
    from_centre = _matrices(
        [one, zero, -centre * one], [zero, one, -centre * one], [zero, zero, one]
    )
    mirror = 1.0 - 2.0 * flip  # x -> size - 1 - x where flipped
    flipping = _matrices([mirror, zero, flip * (size - 1)], [zero, one, zero], [zero, zero, one])
    matrix = to_centre @ rotation @ shift @ shearing @ zoom @ from_centre @ flipping
    return tf.concat([tf.reshape(matrix[:, :2, :], (-1, 6)), tf.zeros_like(matrix[:, 0, :2])], 1)


@keras.saving.register_keras_serializable(package="mammo")
class StudyAugmentation(layers.Layer):
    """ImageDataGenerator's random transforms, drawn per image and applied to a batch
    with one resampling (``keras.ops.image.affine_transform``, bilinear).

    Ranges as ImageDataGenerator reads them: rotation in degrees, shifts as fractions of
    the side, zoom ``z`` -> each axis scaled by a factor in [1 - z, 1 + z], shear angle in
    degrees; ``rotate_90`` adds a random multiple of 90 degrees (exact), and
    ``horizontal_flip`` mirrors half of the images. Draws come from a Keras
    ``SeedGenerator``, so a seed gives the same sequence of transforms.
    """

    def __init__(
        self,
        rotation_degrees: float = 0.0,
        width_shift: float = 0.0,
        height_shift: float = 0.0,
        zoom: float = 0.0,
        shear_degrees: float = 0.0,
        horizontal_flip: bool = False,
        rotate_90: bool = False,
        fill_mode: str = "nearest",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rotation_degrees = rotation_degrees
        self.width_shift = width_shift
        self.height_shift = height_shift
        self.zoom = zoom
        self.shear_degrees = shear_degrees
        self.horizontal_flip = horizontal_flip
        self.rotate_90 = rotate_90
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, n: tf.Tensor, half_width: float, centre: float = 0.0) -> tf.Tensor:
        return keras.random.uniform(
            (n,), centre - half_width, centre + half_width, seed=self.seed_generator
        )

    def call(self, images, training=True):
        if not training:
            return images
        n, size = tf.shape(images)[0], images.shape[1]
        if self.rotate_90:
            quarter_turns = keras.random.randint((n,), 0, 4, seed=self.seed_generator)
        else:
            quarter_turns = tf.zeros((n,), tf.int32)
        flip = (
            tf.cast(self._uniform(n, 0.5, 0.5) < 0.5, tf.float32)
            if self.horizontal_flip
            else tf.zeros((n,))
        )
        transforms = study_transforms(
            theta=self._uniform(n, self.rotation_degrees),
            shift_x=self._uniform(n, self.width_shift) * size,
            shift_y=self._uniform(n, self.height_shift) * size,
            shear=self._uniform(n, self.shear_degrees),
            zoom_x=self._uniform(n, self.zoom, 1.0),
            zoom_y=self._uniform(n, self.zoom, 1.0),
            flip=flip,
            quarter_turns=tf.cast(quarter_turns, tf.int32),
            size=size,
        )
        return keras.ops.image.affine_transform(
            images, transforms, interpolation="bilinear", fill_mode=self.fill_mode
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rotation_degrees": self.rotation_degrees,
            "width_shift": self.width_shift,
            "height_shift": self.height_shift,
            "zoom": self.zoom,
            "shear_degrees": self.shear_degrees,
            "horizontal_flip": self.horizontal_flip,
            "rotate_90": self.rotate_90,
            "fill_mode": self.fill_mode,
            "seed": self.seed,
        }


def build_augmenter(cfg: AugmentationConfig, seed: int) -> StudyAugmentation | None:
    """The on-the-fly transforms ``cfg`` asks for, as one layer; None for no augmentation."""
    ranges = (cfg.rotation_degrees, cfg.width_shift, cfg.height_shift, cfg.zoom, cfg.shear_degrees)
    if not (any(ranges) or cfg.rotate_90 or cfg.horizontal_flip):
        return None
    return StudyAugmentation(
        rotation_degrees=cfg.rotation_degrees,
        width_shift=cfg.width_shift,
        height_shift=cfg.height_shift,
        zoom=cfg.zoom,
        shear_degrees=cfg.shear_degrees,
        horizontal_flip=cfg.horizontal_flip,
        rotate_90=cfg.rotate_90,
        fill_mode=str(cfg.fill_mode),
        seed=seed,
        name=f"augment_{cfg.name}",
        dtype="float32",  # resampled in float32 whatever the model's precision
    )


def training_augmenter(cfg: AugmentationConfig, seed: int) -> StudyAugmentation | None:
    """The on-the-fly augmenter for training batches; None when the split is expanded offline."""
    return None if cfg.offline_copies else build_augmenter(cfg, seed)


def expand_offline(
    images: ModelInput, labels: np.ndarray, cfg: AugmentationConfig, seed: int
) -> tuple[ModelInput, np.ndarray]:
    """The originals followed by ``cfg.offline_copies`` augmented copies of each patch.

    Only ever called on the training split; patches in any stored dtype come back
    scaled to float32 in [0, 1]. The same ``seed`` gives the same copies;
    with ``offline_copies == 0`` the arrays are returned unchanged. For pairs (a tuple
    of arrays) both members are expanded, each patch transformed independently.
    """
    copies = cfg.offline_copies
    if copies == 0:
        return images, labels
    augmenter = build_augmenter(cfg, seed)

    def expand(patches: np.ndarray) -> np.ndarray:
        n = len(patches)
        expanded = aligned_empty((n * (copies + 1), *patches.shape[1:]), np.float32)
        expanded[:n] = to_model_input(patches)
        batch = 256
        for copy in range(1, copies + 1):
            for start in range(0, n, batch):
                chunk = tf.convert_to_tensor(expanded[start : min(start + batch, n)])
                stop = copy * n + start + len(chunk)
                expanded[copy * n + start : stop] = augmenter(chunk, training=True).numpy()
        return expanded

    expanded = tuple(map(expand, images)) if isinstance(images, tuple) else expand(images)
    return expanded, np.tile(labels, copies + 1)
