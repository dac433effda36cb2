"""The scikit-learn baseline of a task as an ordinary run folder (``mammo baseline``).

It is fitted on exactly the task view and the training part of the train/validation
split that ``mammo train`` uses with the same config and seed, and scored on the same
validation and test samples, so its numbers compare one to one with a training run's
(:mod:`mammo_cli.runs.scoring` writes both). No TensorFlow here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from mammo_cli.config.schema import BaselineModel
from mammo_cli.data.dataset import TaskData
from mammo_cli.evaluation.metrics import to_distribution
from mammo_cli.evaluation.reports import SCORES
from mammo_cli.evaluation.statistics import paired_difference
from mammo_cli.models.baseline import fit_baseline, predict_baseline
from mammo_cli.runs.scoring import score, task_positive, write_results

#: how scikit-learn's probabilities are scored: they are distributions (rows sum to 1)
OUTPUT_ACTIVATION = "softmax"


def fit_and_score(cfg: DictConfig, run_dir: Path, data: TaskData) -> dict[str, Any]:
    """Fit the baseline ``cfg.baseline.model`` on the training split of ``data``, score
    the validation split and the test set, and write the scored run into ``run_dir``;
    return its metrics."""
    started = time.perf_counter()
    train, test = data.train, data.test
    class_names = test.class_names
    positive = task_positive(cfg.task)
    train_idx, val_idx = train.split(cfg.trainer.val_split, cfg.seed)
    inputs = train.stored_input()
    pipeline = fit_baseline(cfg, inputs, train.labels[train_idx], rows=train_idx)
    val_probs = predict_baseline(pipeline, inputs, rows=val_idx)
    val_metrics = score(train.labels[val_idx], val_probs, class_names, positive, OUTPUT_ACTIVATION)
    probs = predict_baseline(pipeline, test.stored_input())
    weights = pipeline[-1].class_weight
    result = {
        "task": cfg.task.name,
        "class_names": class_names,
        "counts": {
            "train": train.counts(train_idx),
            "val": train.counts(val_idx),
            "test": test.counts(),
        },
        **score(test.labels, probs, class_names, positive, OUTPUT_ACTIVATION),
        "validation": {key: val_metrics[key] for key in SCORES},
        "epochs_run": None,
        "baseline_model": str(cfg.baseline.model),
        "n_features": int(pipeline.n_features_in_),
        "class_weight": {class_names[i]: w for i, w in weights.items()} if weights else None,
        "seed": cfg.seed,
        "split_seed": cfg.seed,
        "split_grouped_by_patient": train.groups is not None,
        "data_dir": str(data.folder),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    title = f"task {cfg.task.name}: {cfg.baseline.model} baseline, test set"
    return write_results(run_dir, result, test, probs, title, positive, cfg.evaluate)


def versus_baseline(
    cfg: DictConfig, data: TaskData, train_idx: np.ndarray, probs: np.ndarray
) -> dict[str, Any] | None:
    """The model's test ``probs`` against the baseline ``cfg.baseline.model`` fitted on the
    same training rows (``train_idx``): the paired AUC difference model - baseline
    (DeLong for a binary task, else a paired bootstrap over the test units); None with
    ``baseline.model=none``. This is what the reviewer's baseline warning reads."""
    if cfg.baseline.model == BaselineModel.none:
        return None
    train, test = data.train, data.test
    pipeline = fit_baseline(cfg, train.stored_input(), train.labels[train_idx], rows=train_idx)
    baseline = predict_baseline(pipeline, test.stored_input())
    units, unit = test.bootstrap_units()
    bootstrap = cfg.evaluate.bootstrap
    comparison = paired_difference(
        test.labels,
        baseline,
        to_distribution(probs),
        "auc",
        task_positive(cfg.task),
        units=None if unit == "sample" else units,
        resamples=bootstrap.resamples,
        seed=cfg.seed,
        level=bootstrap.level,
    )
    return {"model": str(cfg.baseline.model), **comparison}
