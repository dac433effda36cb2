"""The study's k-holdout validation (tables 2-4): one config trained on k train/validation
splits of the training set, each model scored on the same test set.

The holdout folder holds ``split_1`` ... ``split_k`` (each an ordinary training run
folder), ``holdout.json`` (every split's metrics, their mean and std) and ``holdout.md``.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from mammo_cli.data.dataset import TaskData
from mammo_cli.data.tasks import positive_class
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.metrics import classification_metrics
from mammo_cli.evaluation.reports import SCORES, TextTable, holdout_table, score_summary
from mammo_cli.evaluation.statistics import INTERVAL_METRICS, bootstrap_intervals, pool_splits
from mammo_cli.runs import progress_log
from mammo_cli.runs.folder import RunFolder

log = logging.getLogger(__name__)

RESULT_FILE = "holdout.json"
TABLE_FILE = "holdout.md"


def split_seed(seed: int, split: int) -> int:
    """The train/validation split seed of repetition ``split`` (1-based) of a holdout.

    It is the first 32-bit word of ``numpy.random.SeedSequence([seed, split])``: the same
    on every machine and in every process, and different for every (seed, split), so
    holdouts run with neighbouring seeds share no split.
    """
    return int(np.random.SeedSequence([seed, split]).generate_state(1)[0])


def split_dir_name(split: int) -> str:
    """The subfolder of split ``split`` (1-based) in a holdout run folder."""
    return f"split_{split}"


def train_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` without its ``holdout`` block and ``resume``: what each split folder saves
    as config.yaml."""
    train_cfg = copy.deepcopy(cfg)
    with open_dict(train_cfg):
        del train_cfg["holdout"]
    train_cfg.resume = None
    return train_cfg


def train_splits(
    cfg: DictConfig, data: TaskData, root: Path, resume: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and evaluate split 1..k into ``root/split_i``: (their metrics, their failures).

    A split that fails for another reason than a mistake in the config or data is
    recorded and the others still run. With ``resume``, a finished split is kept as it
    is and the others continue from their checkpoint, if any.
    """
    import keras

    from mammo_cli.commands import record_run
    from mammo_cli.runs.pipeline import train_and_evaluate

    k = cfg.holdout.k
    split_cfg = train_config(cfg)
    runs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for split in range(1, k + 1):
        seed = split_seed(cfg.seed, split)
        folder = RunFolder(root / split_dir_name(split))
        if resume and folder.is_finished:
            progress_log.info("holdout split %d/%d finished earlier: %s", split, k, folder.path)
            runs.append({"split": split, "run_dir": folder.path.name, **folder.metrics()})
            continue
        progress_log.info("holdout split %d/%d (split seed %d): %s", split, k, seed, folder.path)
        keras.backend.clear_session()
        folder.path.mkdir(parents=True, exist_ok=True)

        def body(run_dir: Path, seed: int = seed) -> dict[str, Any]:
            return train_and_evaluate(split_cfg, run_dir, data, split_seed=seed, resume=resume)

        try:
            metrics = record_run(split_cfg, folder.path, "train", body, holdout_split=split)
        except MammoError:
            raise
        except Exception as exc:  # this split's failure; the others still run
            log.exception("holdout split %d failed", split)
            error = f"{type(exc).__name__}: {exc}"
            failed.append(
                {"split": split, "split_seed": seed, "run_dir": folder.path.name, "error": error}
            )
            continue
        runs.append({"split": split, "run_dir": folder.path.name, **metrics})
    return runs, failed


def pooled_scores(cfg: DictConfig, root: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The splits' test predictions pooled (every split predicted the same test set): the
    scores of all rows together, with bootstrap intervals that resample test units (a
    test sample's rows of every split together)."""
    predictions = [RunFolder(root / run["run_dir"]).test_predictions() for run in runs]
    labels, probs, units = pool_splits(
        [p.labels for p in predictions], [p.probs for p in predictions], predictions[0].units
    )
    names = predictions[0].class_names
    positive = positive_class(names, cfg.task.positive_class)
    scores = classification_metrics(labels, probs, names, positive)
    bootstrap = cfg.evaluate.bootstrap
    intervals = bootstrap_intervals(
        labels,
        probs,
        positive,
        units=units,
        resamples=bootstrap.resamples,
        seed=cfg.seed,
        level=bootstrap.level,
        method=str(bootstrap.method),
    )
    return {
        **{key: scores[key] for key in INTERVAL_METRICS},
        "n": int(len(labels)),
        "ci": {key: None if bounds is None else list(bounds) for key, bounds in intervals.items()},
        "ci_level": bootstrap.level,
        "ci_method": f"bootstrap-{bootstrap.method}",
        "bootstrap": {"resamples": bootstrap.resamples, "seed": cfg.seed, "unit": "test unit"},
    }


def summarize(
    cfg: DictConfig,
    runs: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    pooled: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``holdout.json``: every split's metrics, mean/std, the ``pooled``
    figure with its interval (:func:`pooled_scores`), failed splits."""
    mean, std = score_summary(runs) if runs else (None, None)
    validation = [run["validation"] for run in runs]
    return {
        "task": cfg.task.name,
        "k": cfg.holdout.k,
        "seed": cfg.seed,
        "split_seeds": [split_seed(cfg.seed, i) for i in range(1, cfg.holdout.k + 1)],
        "runs": runs,
        "failed": failed,
        "mean": mean,
        "std": std,
        "pooled": pooled,
        "validation_mean": score_summary(validation)[0] if runs else None,
        "scores": list(SCORES),
    }


def holdout_report(cfg: DictConfig, result: dict[str, Any]) -> TextTable:
    """The study-layout table (tables 2-4) of a ``holdout.json`` payload."""
    by_split = {run["split"]: run for run in result["runs"]}
    splits = [by_split.get(i) for i in range(1, result["k"] + 1)]
    context = {"Batch size": str(cfg.trainer.batch_size)}
    hidden_units = OmegaConf.select(cfg, "model.hidden_units", default=None)
    if hidden_units is not None:
        context["Hidden units"] = str(hidden_units)
    notes = [f"split {f['split']} failed: {f['error']}" for f in result["failed"]]
    title = f"mammo holdout: task {result['task']}, {result['k']} splits (test set)"
    pooled = result["pooled"]
    if pooled is not None and pooled["ci"]:
        notes.append(
            f"Pooled: the {len(result['runs'])} splits' {pooled['n']} test predictions "
            f"together, {pooled['ci_level']:.0%} {pooled['ci_method']} intervals over test "
            "samples"
        )
    return holdout_table(splits, result["mean"], result["std"], context, title, notes, pooled)
