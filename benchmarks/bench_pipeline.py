"""Training throughput and accuracy: mammo's pipeline vs the study-style pipeline.

Trains the study's scratch 2.1 model with the mass_calc augmentation on the demo set
(task 2.1: the 500 training abnormalities, no validation split; accuracy on the 150
test abnormalities) with two, optionally three, input pipelines, epoch by epoch in
turn in one process (the order rotates every epoch) so that machine load hits all
alike:

- ``mammo``: ``make_dataset`` + ``build_augmenter`` (tf.data over the uint16 patches as
  stored, seeded shuffle, each batch scaled and augmented in the graph with one
  composed affine resampling per image, prefetch), float32;
- ``study``: Keras' legacy ``ImageDataGenerator`` (rotation 40, shifts 0.2, zoom 0.2,
  shear 0.2, horizontal flip, nearest fill: per-image scipy transforms in Python)
  ``.flow`` over float32 numpy arrays, fed to ``fit`` as the study did;
- ``no_augmentation``: mammo's pipeline without augmentation: the training step alone,
  the ceiling any input pipeline can reach on this machine;
- ``mammo_bf16`` (``--bf16``): mammo's pipeline with ``trainer.precision=mixed_bfloat16``,
  what the default ``trainer.precision=auto`` trains with on CPUs with native bfloat16
  (``default_precision`` in the results).

For each seed all models start from the same weights and use the same compile (Adam,
the task preset). Throughput is images/s of the training epochs (median over seeds and
epochs, first epoch of each seed left out: graph tracing); accuracy is the mean (and
spread) over the seeds, since one 15-epoch run on 150 test images moves by several
points from seed to seed. Each epoch is one ``fit(initial_epoch=e, epochs=e + 1)`` call.

    python benchmarks/bench_pipeline.py [--epochs 15] [--seeds 3] [--bf16] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import compose_train, emit, json_argument, machine

# The study's ImageDataGenerator arguments for mass vs calcification (study 5.1).
STUDY_AUGMENTATION = {
    "rotation_range": 40,
    "width_shift_range": 0.2,
    "height_shift_range": 0.2,
    "zoom_range": 0.2,
    "shear_range": 0.2,
    "horizontal_flip": True,
    "fill_mode": "nearest",
}


def study_generator():
    """The legacy ImageDataGenerator class, or None when this Keras lacks it."""
    import tensorflow as tf

    try:
        return tf.keras.preprocessing.image.ImageDataGenerator
    except AttributeError:
        return None


def main() -> None:
    """Train the contestants epoch by epoch in turn, per seed; report throughput and accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per pipeline and seed")
    parser.add_argument("--seeds", type=int, default=3, help="repetitions with seeds 0..n-1")
    parser.add_argument("--bf16", action="store_true", help="also mammo with mixed_bfloat16")
    json_argument(parser)
    args = parser.parse_args()

    from mammo_cli.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    from mammo_cli.data.dataset import load_task_data
    from mammo_cli.models.registry import build_model
    from mammo_cli.training.augmentation import build_augmenter
    from mammo_cli.training.fit import (
        compile_model,
        make_dataset,
        resolve_precision,
        seed_everything,
        set_precision,
    )

    tf.get_logger().setLevel("ERROR")  # one fit call per epoch: retracing warnings
    cfg = compose_train(["task=2.1", "trainer.progress=false"])
    data = load_task_data(cfg.data, cfg.task)
    x, y = data.train.model_input(), data.train.labels  # float32, as the study fed fit
    n_classes = len(data.test.class_names)
    batch = cfg.trainer.batch_size
    onehot = keras.utils.to_categorical(y, n_classes).astype(np.float32)
    test_ds = make_dataset(data.test.stored_input(), data.test.labels, n_classes, batch)

    generator_class = study_generator()
    if generator_class is None:
        raise SystemExit("this Keras has no legacy ImageDataGenerator; nothing to compare")

    def build(seed: int, precision: str = "float32") -> keras.Model:
        seed_everything(seed)
        set_precision(precision)
        model = build_model(cfg.model, n_classes)
        set_precision("float32")
        compile_model(model, cfg)
        return model

    def contestants(seed: int) -> dict:
        """name -> (model, training data), all models starting from the same weights."""
        augmented = make_dataset(
            data.train.stored_input(),
            y,
            n_classes,
            batch,
            shuffle_seed=seed,
            augmenter=build_augmenter(cfg.augmentation, seed),
        )
        entries = {
            "mammo": (build(seed), augmented),
            "study": (
                build(seed),
                generator_class(**STUDY_AUGMENTATION).flow(
                    x, onehot, batch_size=batch, shuffle=True, seed=seed
                ),
            ),
            "no_augmentation": (
                build(seed),
                make_dataset(data.train.stored_input(), y, n_classes, batch, shuffle_seed=seed),
            ),
        }
        if args.bf16:
            entries["mammo_bf16"] = (build(seed, "mixed_bfloat16"), augmented)
        return entries

    first = contestants(0)
    names = list(first)
    input_seconds: dict[str, list[float]] = {"mammo": [], "study": []}
    for _ in range(3):  # the input pipelines alone, no training: what augmentation costs
        for name in input_seconds:
            source = first[name][1]
            started = time.perf_counter()
            for _batch in source if name == "mammo" else (source[i] for i in range(len(source))):
                pass
            input_seconds[name].append(time.perf_counter() - started)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    accuracy: dict[str, list[float]] = {name: [] for name in names}
    for seed in range(args.seeds):
        entries = first if seed == 0 else contestants(seed)
        for epoch in range(args.epochs):
            shift = (epoch + seed) % len(names)
            for name in names[shift:] + names[:shift]:
                model, source = entries[name]
                started = time.perf_counter()
                model.fit(source, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
                if epoch > 0:  # the first epoch traces the graphs
                    seconds[name].append(time.perf_counter() - started)
        for name in names:
            scores = entries[name][0].evaluate(test_ds, verbose=0, return_dict=True)
            accuracy[name].append(float(scores["accuracy"]))
        print(f"seed {seed}: " + ", ".join(f"{n} {accuracy[n][-1]:.3f}" for n in names))

    results = {
        "benchmark": "pipeline",
        "task": "2.1 demo set",
        "model": first["mammo"][0].name,
        "augmentation": cfg.augmentation.name,
        "reference": "keras legacy ImageDataGenerator (tf.keras.preprocessing.image)",
        "train_images": len(y),
        "test_images": len(data.test.labels),
        "batch_size": batch,
        "epochs": args.epochs,
        "seeds": args.seeds,
        # what trainer.precision=auto (mammo's default) picks on this machine
        "default_precision": resolve_precision("auto"),
        **machine(),
    }
    for name in names:
        median = float(np.median(seconds[name]))
        results[name] = {
            "images_per_s": round(len(y) / median, 1),
            "input_only_images_per_s": (
                round(len(y) / float(np.median(input_seconds[name])), 1)
                if name in input_seconds
                else None
            ),
            "median_epoch_s": round(median, 3),
            "test_accuracy": round(float(np.mean(accuracy[name])), 4),
            "test_accuracy_std": round(float(np.std(accuracy[name])), 4),
            "test_accuracy_per_seed": [round(a, 4) for a in accuracy[name]],
        }
        print(
            f"{name:>15}: {len(y) / median:7.1f} images/s, test accuracy "
            f"{np.mean(accuracy[name]):.4f} +- {np.std(accuracy[name]):.4f}"
        )
    results["speedup"] = round(
        results["mammo"]["images_per_s"] / results["study"]["images_per_s"], 2
    )
    results["ceiling_speedup"] = round(
        results["no_augmentation"]["images_per_s"] / results["study"]["images_per_s"], 2
    )
    results["accuracy_points"] = round(
        100 * (results["mammo"]["test_accuracy"] - results["study"]["test_accuracy"]), 2
    )
    print(
        f"mammo / study: {results['speedup']}x "
        f"(training step alone / study: {results['ceiling_speedup']}x)"
    )
    emit(results, args.json)


if __name__ == "__main__":
    main()
