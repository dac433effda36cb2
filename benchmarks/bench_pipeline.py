"""Training throughput and accuracy: mammo's pipeline vs the study-style pipeline.

Trains the study's scratch 2.1 model with the mass_calc augmentation on the demo set
(task 2.1: the 500 training abnormalities, no validation split; accuracy on the 150
test abnormalities) with two, optionally three, input pipelines, epoch by epoch in
turn in one process (the order rotates every epoch) so that machine load hits all
alike:

- ``mammo``: ``make_dataset`` + ``build_augmenter`` (tf.data, seeded shuffle, Keras
  preprocessing layers on whole batches in the graph, prefetch), float32;
- ``study``: Keras' legacy ``ImageDataGenerator`` (rotation 40, shifts 0.2, zoom 0.2,
  shear 0.2, horizontal flip, nearest fill: per-image scipy transforms in Python)
  ``.flow`` over float32 numpy arrays, fed to ``fit`` as the study did;
- ``mammo_bf16`` (``--bf16``): mammo's pipeline with ``trainer.precision=mixed_bfloat16``.

All models start from the same weights (same seed) and use the same compile (Adam, the
task preset). Throughput is images/s of the training epochs (median, first epoch left
out: graph tracing). Each epoch is one ``fit(initial_epoch=e, epochs=e + 1)`` call.

    python benchmarks/bench_pipeline.py [--epochs 15] [--bf16] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import compose_train, emit, json_argument, machine

# The study's ImageDataGenerator arguments for mass vs calcification (SPEC 3).
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
    """Train the contestants epoch by epoch in turn; report throughput and accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per pipeline")
    parser.add_argument("--bf16", action="store_true", help="also mammo with mixed_bfloat16")
    json_argument(parser)
    args = parser.parse_args()

    from mammo_cli.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from mammo_cli.data.dataset import load_task_data
    from mammo_cli.models import build_model
    from mammo_cli.training.augmentation import build_augmenter
    from mammo_cli.training.fit import compile_model, make_dataset, seed_everything, set_precision

    cfg = compose_train(["task=2.1", "trainer.progress=false"])
    data = load_task_data(cfg.data, cfg.task)
    x, y = data.train.model_input(), data.train.labels
    x_test, y_test = data.test.model_input(), data.test.labels
    n_classes = len(data.test.class_names)
    batch = cfg.trainer.batch_size
    onehot = keras.utils.to_categorical(y, n_classes).astype(np.float32)
    test_ds = make_dataset(x_test, y_test, n_classes, batch)

    generator_class = study_generator()
    if generator_class is None:
        raise SystemExit("this Keras has no legacy ImageDataGenerator; nothing to compare")

    def build(precision: str = "float32") -> keras.Model:
        seed_everything(cfg.seed)
        set_precision(precision)
        model = build_model(cfg.model, n_classes)
        set_precision("float32")
        compile_model(model, cfg)
        return model

    contestants = {
        "mammo": (
            build(),
            make_dataset(
                x,
                y,
                n_classes,
                batch,
                shuffle_seed=cfg.seed,
                augmenter=build_augmenter(cfg.augmentation, cfg.seed),
            ),
        ),
        "study": (
            build(),
            generator_class(**STUDY_AUGMENTATION).flow(
                x, onehot, batch_size=batch, shuffle=True, seed=cfg.seed
            ),
        ),
    }
    if args.bf16:
        contestants["mammo_bf16"] = (build("mixed_bfloat16"), contestants["mammo"][1])

    names = list(contestants)
    input_seconds: dict[str, list[float]] = {"mammo": [], "study": []}
    for _ in range(3):  # the input pipelines alone, no training: what augmentation costs
        for name in input_seconds:
            source = contestants[name][1]
            started = time.perf_counter()
            for _batch in source if name == "mammo" else (source[i] for i in range(len(source))):
                pass
            input_seconds[name].append(time.perf_counter() - started)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for epoch in range(args.epochs):
        shift = epoch % len(names)
        for name in names[shift:] + names[:shift]:
            model, source = contestants[name]
            started = time.perf_counter()
            model.fit(source, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
            seconds[name].append(time.perf_counter() - started)
        print(f"epoch {epoch + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in names))

    results = {
        "benchmark": "pipeline",
        "task": "2.1 demo set",
        "model": contestants["mammo"][0].name,
        "augmentation": cfg.augmentation.name,
        "reference": "keras legacy ImageDataGenerator (tf.keras.preprocessing.image)",
        "train_images": len(y),
        "test_images": len(y_test),
        "batch_size": batch,
        "epochs": args.epochs,
        **machine(),
    }
    for name in names:
        model = contestants[name][0]
        median = float(np.median(seconds[name][1:] if args.epochs > 1 else seconds[name]))
        accuracy = float(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"])
        results[name] = {
            "images_per_s": round(len(y) / median, 1),
            "input_only_images_per_s": (
                round(len(y) / float(np.median(input_seconds[name])), 1)
                if name in input_seconds
                else None
            ),
            "median_epoch_s": round(median, 3),
            "epoch_s": [round(s, 3) for s in seconds[name]],
            "test_accuracy": round(accuracy, 4),
        }
        print(f"{name:>10}: {len(y) / median:7.1f} images/s, test accuracy {accuracy:.4f}")
    results["speedup"] = round(
        results["mammo"]["images_per_s"] / results["study"]["images_per_s"], 2
    )
    results["accuracy_points"] = round(
        100 * (results["mammo"]["test_accuracy"] - results["study"]["test_accuracy"]), 2
    )
    print(f"mammo / study: {results['speedup']}x")
    emit(results, args.json)


if __name__ == "__main__":
    main()
