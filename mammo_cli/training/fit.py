"""The one fit routine every command uses (train, holdout, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from hydra.utils import instantiate

from mammo_cli.config import TrainConfig
from mammo_cli.data.course import TENSOR_ALIGNMENT, pixel_scale
from mammo_cli.data.tasks import ModelInput, Samples
from mammo_cli.errors import MammoError
from mammo_cli.provenance import cpu_has_native_bfloat16
from mammo_cli.training.augmentation import training_augmenter
from mammo_cli.training.callbacks import EpochTimer, RichProgress
from mammo_cli.training.checkpoint import TrainingCheckpoint, sigterm_interrupts
from mammo_cli.training.class_weights import class_weights

#: model.output_activation -> the matching loss on one-hot targets
LOSSES = {"softmax": "categorical_crossentropy", "sigmoid": "binary_crossentropy"}


@dataclass(frozen=True)
class FitResult:
    """What a fit leaves behind besides the trained weights."""

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    class_weight: dict[int, float] | None
    #: wall-clock seconds of each epoch run
    epoch_seconds: list[float]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy for ``trainer.precision``.

    ``auto`` is ``mixed_bfloat16`` when training on a CPU with native bfloat16 (1.7x the
    float32 throughput at equal accuracy in ``make bench``), else ``float32`` (GPUs
    included: float16 has not been benchmarked for accuracy).
    """
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU") or not cpu_has_native_bfloat16():
        return "float32"
    return "mixed_bfloat16"


def set_precision(precision: str) -> str:
    """Make ``precision`` (resolved) Keras' global dtype policy for the models built
    afterwards; return the policy's name.

    Mixed policies compute in bfloat16/float16 with float32 weights; mammo's output
    layers are float32 in every policy.
    """
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def scale_batch(batch: tf.Tensor) -> tf.Tensor:
    """A batch of patches as float32 in [0, 1], scaled by :func:`pixel_scale` of its dtype
    (float batches, e.g. cached features, pass through)."""
    scale = pixel_scale(batch.dtype.as_numpy_dtype)
    batch = tf.cast(batch, tf.float32)
    return batch if scale == 1.0 else batch / scale


def _gathered(inputs: ModelInput, index: tf.Tensor) -> ModelInput:
    return tf.nest.map_structure(lambda part: scale_batch(tf.gather(part, index)), inputs)


def _shares_memory_with_tensorflow(array: np.ndarray) -> bool:
    """Whether TensorFlow can wrap ``array`` without a copy (it needs aligned memory)."""
    return (
        array.flags.c_contiguous
        and array.flags.writeable
        and array.ctypes.data % TENSOR_ALIGNMENT == 0
        and array.dtype.kind in "uif"
        and array.dtype.isnative
    )


def _host_tensor(part: np.ndarray | tf.Tensor) -> tf.Tensor:
    if isinstance(part, np.ndarray) and _shares_memory_with_tensorflow(part):
        return tf.experimental.dlpack.from_dlpack(part.__dlpack__())
    return tf.convert_to_tensor(part)


def host_tensors(images: ModelInput) -> ModelInput:
    """``images`` as tensors in host memory, where the tf.data pipeline gathers batches
    from them whatever device the model runs on (tensors are returned as they are).

    Arrays allocated aligned (a task view's patches, :func:`~mammo_cli.data.course.aligned_rows`)
    are shared with TensorFlow through DLPack, not copied; others are copied once.
    """
    with tf.device("/cpu:0"):
        return tf.nest.map_structure(_host_tensor, images)


def make_dataset(
    images: ModelInput,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    *,
    rows: np.ndarray | None = None,
    shuffle_seed: int | None = None,
    augmenter: keras.layers.Layer | None = None,
) -> tf.data.Dataset:
    """Batches of (input, one-hot label); shuffled and augmented only when asked.

    ``images`` is a patch array, or a tuple of them for a multi-input model (the
    siamese pairs); the augmenter then transforms each member independently. With
    ``rows``, sample ``k`` is ``images[rows[k]]`` with class ``labels[k]`` (a split that
    shares the task's patches, :class:`~mammo_cli.data.tasks.Samples`). Patches stay in
    their stored dtype (uint16 from a course file) and are held once, as tensors; each
    batch is gathered in one op and scaled to [0, 1] in the graph (:func:`scale_batch`).
    The (seeded) shuffle permutes positions, so no shuffle buffer keeps a second copy.
    """
    onehot = keras.utils.to_categorical(labels, n_classes).astype(np.float32)
    inputs = host_tensors(images)
    targets = tf.convert_to_tensor(onehot)
    row_of = None if rows is None else tf.constant(rows, tf.int64)
    dataset = tf.data.Dataset.range(len(labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)

    def batch(positions: tf.Tensor) -> tuple[ModelInput, tf.Tensor]:
        index = positions if row_of is None else tf.gather(row_of, positions)
        return _gathered(inputs, index), tf.gather(targets, positions)

    dataset = dataset.batch(batch_size).map(batch)
    if augmenter is not None:

        def augment(x):
            if isinstance(x, tuple):
                return tuple(augmenter(part, training=True) for part in x)
            return augmenter(x, training=True)

        dataset = dataset.map(
            lambda x, y: (augment(x), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def prediction_dataset(
    images: ModelInput, batch_size: int, rows: np.ndarray | None = None
) -> tf.data.Dataset:
    """Batches of ``images`` in order (of ``images[rows]`` with ``rows``), scaled as
    :func:`make_dataset` scales them, for ``model.predict``."""
    inputs = host_tensors(images)
    if rows is None:
        dataset = tf.data.Dataset.range(len(tf.nest.flatten(images)[0]))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(rows, dtype=np.int64))
    # a 1-tuple: Keras would read a bare (abnormality, baseline) tuple as (input, target)
    return (
        dataset.batch(batch_size)
        .map(lambda index: (_gathered(inputs, index),))
        .prefetch(tf.data.AUTOTUNE)
    )


def compile_model(model: keras.Model, cfg: TrainConfig) -> None:
    """Compile with the configured optimizer and the loss matching the output activation."""
    try:
        optimizer = instantiate(cfg.optimizer)
    except Exception as exc:  # a bad learning rate or optimizer argument
        raise MammoError(f"cannot build optimizer {cfg.optimizer._target_}: {exc}") from exc
    model.compile(
        optimizer=optimizer,
        loss=LOSSES[cfg.model.output_activation],
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def fit_model(
    model: keras.Model,
    train: Samples,
    val: Samples,
    cfg: TrainConfig,
    n_classes: int,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> FitResult:
    """Train ``model`` on ``train`` with early stopping on ``val``; best weights restored.

    The samples' input is a tuple of arrays for a multi-input model; ``train`` and
    ``val`` may share it (their ``rows`` pick the samples). ``extra_callbacks`` (the
    run's loggers) run after the routine's own. With ``checkpoint_dir`` the training
    state is saved there after every epoch, and with ``resume`` the fit continues from
    the checkpoint found there (:mod:`mammo_cli.training.checkpoint`). SIGTERM
    interrupts the fit like Ctrl-C.
    """
    trainer = cfg.trainer
    weights = class_weights(cfg.class_weights, train.labels, n_classes)
    train_ds = make_dataset(
        train.inputs,
        train.labels,
        n_classes,
        trainer.batch_size,
        rows=train.rows,
        shuffle_seed=cfg.seed,
        augmenter=training_augmenter(cfg.augmentation, cfg.seed),
    )
    val_ds = make_dataset(val.inputs, val.labels, n_classes, trainer.batch_size, rows=val.rows)
    compile_model(model, cfg)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=trainer.patience, restore_best_weights=True
    )
    timer = EpochTimer()
    callbacks: list[keras.callbacks.Callback] = [early_stopping, timer]
    if trainer.progress:
        callbacks.append(RichProgress(trainer.epochs))
    callbacks.extend(extra_callbacks)
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = TrainingCheckpoint(checkpoint_dir, early_stopping, timer, restore=resume)
        callbacks.append(checkpoint)  # last: it saves the state the others reached
    initial_epoch = checkpoint.initial_epoch if checkpoint else 0
    # a checkpoint whose early stopping had ended the training runs no more epochs
    epochs = initial_epoch if checkpoint and checkpoint.stopped else trainer.epochs
    with sigterm_interrupts():
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            class_weight=weights,
            callbacks=callbacks,
            shuffle=False,  # the dataset is already shuffled (seeded) once per epoch
            verbose=0,
        )
    epochs_history = checkpoint.history if checkpoint else history.history
    val_loss = epochs_history["val_loss"]
    return FitResult(
        history={key: [float(v) for v in values] for key, values in epochs_history.items()},
        epochs_run=len(val_loss),
        best_epoch=int(np.argmin(val_loss)) + 1,
        class_weight=weights,
        epoch_seconds=timer.seconds,
    )
