"""The ImageNet backbones side by side: parameters, FLOPs at 150x150, feature-extraction speed.

For every ``model=<backbone>`` config (its own default pooling: flatten for VGG/ResNet,
avg for DenseNet121, EfficientNetV2B0, ConvNeXtTiny), with random weights
(``model.weights=null``: the cost does not depend on the values) and float32:

- ``parameters``: of the whole model with 2 classes (and the trainable ones in fe mode);
- ``gflops``: floating-point operations of one 150x150 patch through the backbone,
  counted analytically from the layers' shapes: 2 x the multiply-accumulates of every
  convolution (grouped and depthwise included) and Dense layer (ConvNeXt's pointwise
  convolutions); bias, normalisation and activation work is left out (~1 %).
  TensorFlow's profiler agrees on VGG16 (13.2 GFLOPs) but misses depthwise and grouped
  convolutions, hence the analytic count;
- ``images_per_s``: feature extraction, the part the feature cache stores (adapter +
  backbone + pooling), batches of ``--batch-size`` random patches through the compiled
  predict function; median over ``--batches`` timed batches after one warm-up batch.

    python benchmarks/bench_backbones.py [--batches 5] [--batch-size 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from common import compose_train, emit, json_argument, machine

BACKBONES = ("vgg16", "vgg19", "resnet50", "densenet121", "efficientnetv2b0", "convnext_tiny")


def multiply_accumulates(layer) -> int:
    """Multiply-accumulates of one sample through ``layer`` (nested models included)."""
    import keras

    if isinstance(layer, keras.Model):
        return sum(multiply_accumulates(inner) for inner in layer.layers)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return math.prod(layer.output.shape[1:]) * math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.Conv2D):
        per_output = math.prod(layer.kernel_size) * layer.input.shape[-1] // layer.groups
        return math.prod(layer.output.shape[1:]) * per_output
    if isinstance(layer, keras.layers.Dense):
        return math.prod(layer.output.shape[1:]) * layer.input.shape[-1]
    return 0


def images_per_second(features, batch_size: int, batches: int) -> tuple[float, list[float]]:
    """Median images/s of ``features.predict_on_batch`` over ``batches`` timed batches."""
    x = np.random.default_rng(0).random((batch_size, 150, 150, 1), dtype=np.float32)
    features.predict_on_batch(x)  # warm-up: traces the predict function
    seconds = []
    for _ in range(batches):
        started = time.perf_counter()
        features.predict_on_batch(x)
        seconds.append(time.perf_counter() - started)
    return batch_size / float(np.median(seconds)), seconds


def main() -> None:
    """Build each backbone's model from its config and measure it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5, help="timed batches per backbone")
    parser.add_argument("--batch-size", type=int, default=32, help="patches per batch")
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated")
    json_argument(parser)
    args = parser.parse_args()

    from mammo_cli.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from mammo_cli.models.pretrained import POOLING_LAYERS
    from mammo_cli.models.registry import build_model

    keras.mixed_precision.set_global_policy("float32")
    results: dict = {
        "benchmark": "backbones",
        "batch_size": args.batch_size,
        "batches": args.batches,
        "dtype": "float32",
        **machine(),
        "backbones": {},
    }
    print(f"{'backbone':<17} {'pooling':<8} {'parameters':>11} {'trainable fe':>12} "
          f"{'GFLOPs':>7} {'images/s':>9}")  # fmt: skip
    for name in args.backbones.split(","):
        cfg = compose_train([f"model={name}", "model.weights=null", "model.mode=fe"])
        model = build_model(cfg.model, 2)
        features_layer = POOLING_LAYERS[cfg.model.pooling]
        features = keras.Model(model.input, model.get_layer(features_layer).output)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        gflops = 2 * multiply_accumulates(model.get_layer(name)) / 1e9
        rate, seconds = images_per_second(features, args.batch_size, args.batches)
        results["backbones"][name] = {
            "pooling": cfg.model.pooling,
            "parameters": model.count_params(),
            "trainable_fe": trainable,
            "feature_size": int(features.output.shape[-1]),
            "gflops": round(gflops, 2),
            "images_per_s": round(rate, 1),
            "batch_seconds": [round(s, 3) for s in seconds],
        }
        print(f"{name:<17} {cfg.model.pooling:<8} {model.count_params():>11,} {trainable:>12,} "
              f"{gflops:>7.2f} {rate:>9.1f}", flush=True)  # fmt: skip
        keras.backend.clear_session()
    emit(results, args.json)


if __name__ == "__main__":
    main()
