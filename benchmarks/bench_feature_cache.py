"""Cached backbone features: per head epoch, and across the runs of a holdout (``make bench``).

Per run: trains the task 3.2 preset (VGG16 feature extraction, batch 64) on random
patches through the shared fit routine twice in one process: the full model (the frozen
base runs on every image every epoch) and the head on features computed once; prints
the median seconds per epoch (the first, tracing epoch left out).

Across runs: ``mammo holdout task=3.2 model.weights=null augmentation=none holdout.k=4``
(few epochs) on a demo-generator set of ``--holdout-pairs`` training pairs, through the
real CLI in a child process, twice: with an empty feature cache (cold) and again with
the features the first one stored (warm); prints both wall times and whether the splits
hit the cache. A cold holdout already computes the features once for its k splits, so
the ratio is (features + the rest) / the rest; the rest (TensorFlow's start, graph
tracing, saving models and plots) is fixed, the features grow with the patches.

Random backbone weights (``model.weights=null``): the cost does not depend on the values.

    python benchmarks/bench_feature_cache.py [--train 256] [--val 64] [--epochs 4]
        [--holdout-pairs 1800] [--holdout-epochs 3] [--parts epoch,holdout] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import compose_train, emit, json_argument, machine

PARTS = ("epoch", "holdout")
#: the holdout the across-runs row times (the CLI's own arguments)
HOLDOUT = ("holdout", "task=3.2", "model.weights=null", "augmentation=none", "holdout.k=4")


def per_epoch(seconds: list[float]) -> float:
    """Median seconds per epoch, without the first epoch (graph tracing) when possible."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def epoch_row(n_train: int, n_val: int, epochs: int) -> dict[str, Any]:
    """Seconds per head epoch: the full model vs the head on features computed once."""
    from mammo_cli.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from mammo_cli.data.tasks import Samples
    from mammo_cli.models.registry import build_model
    from mammo_cli.training.feature_cache import extract_features, frozen_base_split
    from mammo_cli.training.fit import fit_model, seed_everything

    cfg = compose_train(
        [
            "task=3.2",
            "model.weights=null",
            "augmentation=none",
            f"trainer.epochs={epochs}",
            f"trainer.patience={epochs}",
            "trainer.progress=false",
        ]
    )
    rng = np.random.default_rng(0)
    train = Samples(rng.random((n_train, 150, 150, 1), np.float32), np.arange(n_train) % 2)
    val = Samples(rng.random((n_val, 150, 150, 1), np.float32), np.arange(n_val) % 2)

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
    print(f"VGG16 fe head, {n_train} train + {n_val} val patches, batch 64:")
    print(f"  uncached: {uncached_s:8.3f} s per epoch (base runs on every image)")
    print(f"  cached:   {cached_s:8.3f} s per epoch (+ {extraction_s:.1f} s once for features)")
    print(f"  speed-up: {uncached_s / cached_s:8.1f}x per epoch")
    return {
        "model": "vgg16 fe (task 3.2 preset, random weights)",
        "train_patches": n_train,
        "val_patches": n_val,
        "batch_size": cfg.trainer.batch_size,
        "epochs": epochs,
        "uncached_s_per_epoch": round(uncached_s, 4),
        "cached_s_per_epoch": round(cached_s, 4),
        "feature_extraction_s": round(extraction_s, 2),
        "speedup_per_epoch": round(uncached_s / cached_s, 1),
    }


def mammo(args: list[str], cwd: Path, cache: Path) -> float:
    """Run ``mammo <args>`` in a child process with ``MAMMO_CACHE=cache``; its wall seconds."""
    env = {**os.environ, "MAMMO_CACHE": str(cache)}
    print(f"$ MAMMO_CACHE={cache} mammo {' '.join(args)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mammo_cli.cli", *args], cwd=cwd, env=env, capture_output=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"mammo {args[0]} failed (exit {done.returncode}):\n{done.stderr.decode()}")
    return seconds


def holdout_row(pairs: int, epochs: int) -> dict[str, Any]:
    """Wall time of the same 4-split holdout with an empty, then a filled feature cache."""
    from mammo_cli.data.synthetic import write_demo_set

    with tempfile.TemporaryDirectory(prefix="mammo-bench-cache-") as scratch:
        root = Path(scratch)
        demo = write_demo_set(root / "demo", n_train_pairs=pairs)  # not timed
        command = [*HOLDOUT, f"trainer.epochs={epochs}", f"trainer.patience={epochs}"]
        command += ["trainer.progress=false", f"data.dir={demo}"]
        seconds, splits = {}, {}
        for state in ("cold", "warm"):
            folder = root / state
            seconds[state] = mammo([*command, f"hydra.run.dir={folder}"], root, root / "cache")
            result = json.loads((folder / "holdout.json").read_text())
            splits[state] = result["runs"]
        features = root / "cache" / "features"
        stored_bytes = sum(path.stat().st_size for path in features.glob("*.npz"))
    difference = max(
        abs(cold[key] - warm[key])
        for cold, warm in zip(splits["cold"], splits["warm"], strict=True)
        for key in ("accuracy", "auc", "loss")
    )
    train = sum(splits["cold"][0]["counts"]["train"].values())
    val = sum(splits["cold"][0]["counts"]["val"].values())
    test = sum(splits["cold"][0]["counts"]["test"].values())
    ratio = seconds["cold"] / seconds["warm"]
    print(f"mammo {' '.join(command[:5])}, {epochs} epochs, {train}+{val}+{test} patches:")
    print(f"  cold cache: {seconds['cold']:7.1f} s")
    print(f"  warm cache: {seconds['warm']:7.1f} s   ({ratio:.1f}x)")
    return {
        "command": "mammo " + " ".join(command[:5]) + f" trainer.epochs={epochs}",
        "train_val_test_patches": [train, val, test],
        "epochs": epochs,
        "cold_s": round(seconds["cold"], 1),
        "warm_s": round(seconds["warm"], 1),
        "speedup": round(ratio, 2),
        # per split: {"hits", "misses", ...} once metrics.json records it, else true/false
        "cold_feature_cache": [run["feature_cache"] for run in splits["cold"]],
        "warm_feature_cache": [run["feature_cache"] for run in splits["warm"]],
        "stored_mb": round(stored_bytes / 1e6, 1),
        "max_metric_difference_cold_vs_warm": difference,
    }


def main() -> None:
    """Run the selected parts and report them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=256, help="training patches (epoch row)")
    parser.add_argument("--val", type=int, default=64, help="validation patches (epoch row)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per training (epoch row)")
    parser.add_argument("--holdout-pairs", type=int, default=1800, help="training pairs (holdout)")
    parser.add_argument("--holdout-epochs", type=int, default=3, help="epochs per holdout split")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: epoch,holdout")
    json_argument(parser)
    args = parser.parse_args()
    parts = [part for part in args.parts.split(",") if part]
    if set(parts) - set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}")

    results: dict[str, Any] = {"benchmark": "feature_cache", **machine()}
    if "epoch" in parts:
        results.update(epoch_row(args.train, args.val, args.epochs))
    if "holdout" in parts:
        results["holdout"] = holdout_row(args.holdout_pairs, args.holdout_epochs)
    emit(results, args.json)


if __name__ == "__main__":
    main()
