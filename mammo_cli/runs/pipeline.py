"""Train and evaluate one model, or re-evaluate a saved one: what ``mammo train``, each
holdout split and ``mammo evaluate`` do with a run folder.

A training run writes ``model.keras``, ``history.csv`` and ``curves.png``, then the
scored test set (:mod:`mammo_cli.runs.scoring`); it checkpoints every epoch into
``checkpoint/`` until ``metrics.json`` is written.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mammo_cli.config import DataConfig, EvaluationSettings, TrainConfig
from mammo_cli.data.dataset import TaskData, load_task_data
from mammo_cli.data.tasks import Samples, take
from mammo_cli.evaluation.plots import save_curves
from mammo_cli.evaluation.reports import SCORES
from mammo_cli.files import write_text, write_with
from mammo_cli.models.registry import build_model
from mammo_cli.runs.baseline import versus_baseline
from mammo_cli.runs.folder import CHECKPOINT_DIR, HISTORY_FILE, MODEL_FILE, PLOTS, RunFolder
from mammo_cli.runs.predict import load_checked_model, predict
from mammo_cli.runs.scoring import score, task_positive, write_results
from mammo_cli.tf_setup import distribution_strategy, set_thread_counts
from mammo_cli.training.augmentation import expand_offline
from mammo_cli.training.checkpoint import remove_checkpoint
from mammo_cli.training.feature_cache import (
    FeatureCache,
    cacheable_split,
    fit_head_on_features,
    predict_on_features,
)
from mammo_cli.training.fit import fit_model, host_tensors, seed_everything, set_precision
from mammo_cli.training.loggers import build_logger_callbacks


def _history_csv(history: dict[str, list[float]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch, row in enumerate(zip(*(history[k] for k in keys), strict=True), start=1):
        writer.writerow([epoch, *row])
    return buffer.getvalue()


def save_model(model: keras.Model, path: Path) -> Path:
    """Save a Keras model whole (temp file + rename)."""
    return write_with(path, model.save)


def train_and_evaluate(
    cfg: TrainConfig,
    run_dir: Path,
    data: TaskData,
    split_seed: int | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train one model as ``cfg`` says on ``data``, evaluate it on the test set, fill ``run_dir``.

    ``split_seed`` picks the train/validation split (default: ``cfg.seed``); holdout
    validation passes a different one per repetition. Offline augmentation expands the
    training split only; a frozen base with static training data trains the head on
    features cached once (:mod:`mammo_cli.training.feature_cache`). The fit checkpoints
    every epoch into ``run_dir/checkpoint`` (removed once ``metrics.json`` is written);
    ``resume`` continues from the checkpoint there, if any (:mod:`mammo_cli.training.checkpoint`).
    """
    started = time.perf_counter()
    set_thread_counts(cfg.trainer.threads)  # before TensorFlow runs its first op
    seed_everything(cfg.seed)
    precision = set_precision(str(cfg.trainer.precision))
    class_names = data.test.class_names
    n_classes = len(class_names)
    strategy = distribution_strategy()  # several GPUs: one model replica on each
    with strategy.scope():
        # Built first: missing pretrained weights fail before any expensive work.
        model = build_model(cfg.model, n_classes)
    split_seed = cfg.seed if split_seed is None else split_seed
    train_idx, val_idx = data.train.split(cfg.trainer.val_split, split_seed)
    # stored dtype: each batch is scaled as it is fed (make_dataset); for pairs tasks
    # the (abnormality, baseline) tuple. Both splits pick their rows from the task
    # view's patches, which TensorFlow shares rather than copies (host_tensors).
    patches = host_tensors(data.train.stored_input())
    train_labels = data.train.labels
    val = Samples(patches, train_labels[val_idx], val_idx)
    if cfg.augmentation.offline_copies:
        train = Samples(
            *expand_offline(
                take(data.train.stored_input(), train_idx),
                train_labels[train_idx],
                cfg.augmentation,
                cfg.seed,
            )
        )
    else:
        train = Samples(patches, train_labels[train_idx], train_idx)
    split = cacheable_split(model, cfg)
    cache = None if split is None else FeatureCache.for_config(cfg)
    loggers = build_logger_callbacks(cfg, run_dir)
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    with strategy.scope():  # the optimizer's variables are mirrored too
        if split is None:
            fit = fit_model(model, train, val, cfg, n_classes, loggers, checkpoint_dir, resume)
        else:
            fit = fit_head_on_features(
                *split, train, val, cfg, n_classes, loggers, checkpoint_dir, resume, cache
            )
    n_train_samples = len(train.labels)
    del train
    positive = task_positive(cfg.task)
    activation = str(cfg.model.output_activation)
    batch_size = cfg.trainer.batch_size

    def probabilities(samples: Samples) -> np.ndarray:
        """The model's outputs; with a frozen base, the head's on the cached features."""
        if split is None:
            return predict(model, samples.inputs, batch_size, samples.rows)
        return predict_on_features(*split, samples, batch_size, cache)

    val_probs = probabilities(val)
    val_metrics = score(val.labels, val_probs, class_names, positive, activation)
    save_model(model, run_dir / MODEL_FILE)
    write_text(run_dir / HISTORY_FILE, _history_csv(fit.history))
    save_curves(fit.history, run_dir / PLOTS["curves"])

    test = data.test
    probs = probabilities(Samples(test.stored_input(), test.labels))
    result = {
        "task": cfg.task.name,
        "class_names": class_names,
        "counts": {
            "train": data.train.counts(train_idx),
            "val": data.train.counts(val_idx),
            "test": test.counts(),
        },
        **score(test.labels, probs, class_names, positive, activation),
        "validation": {key: val_metrics[key] for key in SCORES},
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "train_samples": n_train_samples,
        "feature_cache": None if cache is None else cache.stats.as_dict(),
        "seconds_per_epoch": round(float(np.median(fit.epoch_seconds)), 3),
        "class_weight": (
            {class_names[i]: w for i, w in fit.class_weight.items()} if fit.class_weight else None
        ),
        "baseline": versus_baseline(cfg, data, train_idx, probs),
        "seed": cfg.seed,
        "split_seed": split_seed,
        "split_grouped_by_patient": data.train.groups is not None,
        "dtype_policy": precision,
        "n_params": int(model.count_params()),
        "data_dir": str(data.folder),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    result = write_results(
        run_dir,
        result,
        test,
        probs,
        f"task {cfg.task.name}: test set",
        positive,
        cfg.evaluate,
    )
    remove_checkpoint(run_dir)
    return result


def evaluate_saved_run(
    run: RunFolder, data: DataConfig, batch_size: int, settings: EvaluationSettings, run_dir: Path
) -> dict[str, Any]:
    """Re-evaluate the model saved in ``run`` on a test set; write ``run_dir`` like a
    training run's scored test set (``data.dir`` unset: the data the run used)."""
    started = time.perf_counter()
    cfg = run.config()
    task = cfg.task
    task_data = load_task_data(data if data.dir is not None else cfg.data, task, with_train=False)
    test = task_data.test
    model = load_checked_model(run)
    probs = predict(model, test.stored_input(), batch_size)
    source = run.metrics()
    positive = task_positive(task)
    result = {
        "task": task.name,
        "class_names": test.class_names,
        "counts": {"test": test.counts()},
        **score(test.labels, probs, test.class_names, positive, run.output_activation),
        "epochs_run": source.get("epochs_run"),
        "seed": source.get("seed") or 0,  # the training run's: the same intervals
        "source_run": str(run.path.resolve()),
        "data_dir": str(task_data.folder),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    title = f"task {task.name}: {task_data.folder.name} test set"
    return write_results(run_dir, result, test, probs, title, positive, settings)
