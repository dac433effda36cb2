"""Seconds per head epoch with and without cached backbone features (``make bench``).

Trains the task 3.2 preset (VGG16 feature extraction, batch 64) on random patches
through the shared fit routine twice in one process: the full model (the frozen base
runs on every image every epoch) and the head on features computed once. Random
backbone weights (``model.weights=null``): the cost does not depend on the values.
Prints the median seconds per epoch (the first, tracing epoch left out) and writes
``benchmarks/results.json`` (or ``--json PATH``: run_all.py collects it there).

    python benchmarks/bench_feature_cache.py [--train 256] [--val 64] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module

from mammo_cli.cli import quote_numeric_choices
from mammo_cli.config import TrainConfig, register_configs
from mammo_cli.files import write_json

RESULTS = Path(__file__).with_name("results.json")


def bench_config(epochs: int) -> TrainConfig:
    """The task 3.2 preset with random weights, no augmentation, no early stop, no bars."""
    register_configs()
    overrides = [
        "task=3.2",
        "model.weights=null",
        "augmentation=none",
        f"trainer.epochs={epochs}",
        f"trainer.patience={epochs}",
        "trainer.progress=false",
    ]
    with initialize_config_module("mammo_cli.conf", version_base="1.3"):
        return compose("train", overrides=quote_numeric_choices(overrides))


def per_epoch(seconds: list[float]) -> float:
    """Median seconds per epoch, without the first epoch (graph tracing) when possible."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def main() -> None:
    """Run both trainings and report seconds per head epoch, cached vs uncached."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=256, help="training patches")
    parser.add_argument("--val", type=int, default=64, help="validation patches")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per training")
    parser.add_argument("--json", type=Path, default=RESULTS, help="write the results here")
    args = parser.parse_args()

    from mammo_cli.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from mammo_cli.data.tasks import Samples
    from mammo_cli.models import build_model
    from mammo_cli.training.feature_cache import extract_features, frozen_base_split
    from mammo_cli.training.fit import fit_model, seed_everything

    cfg = bench_config(args.epochs)
    rng = np.random.default_rng(0)
    train = Samples(rng.random((args.train, 150, 150, 1), np.float32), np.arange(args.train) % 2)
    val = Samples(rng.random((args.val, 150, 150, 1), np.float32), np.arange(args.val) % 2)

    seed_everything(cfg.seed)
    uncached = fit_model(build_model(cfg.model, 2), train, val, cfg, 2)

    seed_everything(cfg.seed)
    base, head = frozen_base_split(build_model(cfg.model, 2))
    started = time.perf_counter()
    train_features = extract_features(base, train.inputs, cfg.trainer.batch_size)
    val_features = extract_features(base, val.inputs, cfg.trainer.batch_size)
    extraction_s = time.perf_counter() - started
    cached = fit_model(
        head, Samples(train_features, train.labels), Samples(val_features, val.labels), cfg, 2
    )

    uncached_s, cached_s = per_epoch(uncached.epoch_seconds), per_epoch(cached.epoch_seconds)
    results = {
        "benchmark": "feature_cache",
        "model": "vgg16 fe (task 3.2 preset, random weights)",
        "train_patches": args.train,
        "val_patches": args.val,
        "batch_size": cfg.trainer.batch_size,
        "epochs": args.epochs,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "uncached_s_per_epoch": round(uncached_s, 4),
        "cached_s_per_epoch": round(cached_s, 4),
        "feature_extraction_s": round(extraction_s, 2),
        "speedup_per_epoch": round(uncached_s / cached_s, 1),
    }
    print(f"VGG16 fe head, {args.train} train + {args.val} val patches, batch 64:")
    print(f"  uncached: {uncached_s:8.3f} s per epoch (base runs on every image)")
    print(f"  cached:   {cached_s:8.3f} s per epoch (+ {extraction_s:.1f} s once for features)")
    print(f"  speed-up: {uncached_s / cached_s:8.1f}x per epoch")
    write_json(args.json, results)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
