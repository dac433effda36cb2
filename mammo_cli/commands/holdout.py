"""``mammo holdout``: k trainings of one config, each on its own train/validation split.

The study's k-holdout validation (tables 2-4): the training set is split k times into
training and validation parts (stratified, seeded), one model is trained per split with
the same fit and evaluate code as ``mammo train`` and evaluated on the same test set.
The run folder gets ``split_1`` ... ``split_k`` (each a complete run folder that
``mammo evaluate`` and ``mammo report`` read), ``holdout.json`` and ``holdout.md``, and
the resolved holdout config ``holdout.yaml``. ``mammo holdout resume=<holdout dir>``
continues an interrupted holdout with that config: finished splits (those with a
``metrics.json``) are kept, the first unfinished one resumes from its checkpoint (or
starts again), and the rest run.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from mammo_cli.commands import current_run_dir, in_run_folder, resumed_config
from mammo_cli.config import HoldoutConfig
from mammo_cli.data.dataset import TaskData, load_task_data
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.reports import (
    SCORES,
    TextTable,
    holdout_table,
    print_table,
    score_summary,
)
from mammo_cli.files import write_json, write_text
from mammo_cli.tf_setup import import_tensorflow_quietly
from mammo_cli.training.tracking import check_logger, tracked_run

log = logging.getLogger(__name__)

RESULT_FILE = "holdout.json"
TABLE_FILE = "holdout.md"
CONFIG_FILE = "holdout.yaml"


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


def _train_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` without its ``holdout`` block: what each split folder saves as config.yaml."""
    train_cfg = copy.deepcopy(cfg)
    with open_dict(train_cfg):
        del train_cfg["holdout"]
    return train_cfg


def summarize(
    cfg: DictConfig, runs: list[dict[str, Any]], failed: list[dict[str, Any]]
) -> dict[str, Any]:
    """The content of ``holdout.json``: every split's metrics, mean/std, failed splits."""
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
    return holdout_table(splits, result["mean"], result["std"], context, title, notes)


def _train_splits(
    cfg: DictConfig, data: TaskData, root: Path, resume: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and evaluate split 1..k into ``root/split_i``: (their metrics, their failures).

    With ``resume``, a split that has its ``metrics.json`` is kept as it is and the others
    continue from their checkpoint, if any.
    """
    import keras

    from mammo_cli.runs import METRICS_FILE, train_and_evaluate

    k = cfg.holdout.k
    train_cfg = _train_config(cfg)
    runs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for split in range(1, k + 1):
        seed = split_seed(cfg.seed, split)
        run_dir = root / split_dir_name(split)
        if resume and (run_dir / METRICS_FILE).is_file():
            print(f"holdout split {split}/{k} finished earlier: {run_dir}")
            metrics = json.loads((run_dir / METRICS_FILE).read_text())
            runs.append({"split": split, "run_dir": run_dir.name, **metrics})
            continue
        print(f"holdout split {split}/{k} (split seed {seed}): {run_dir}")
        keras.backend.clear_session()

        def body(folder: Path, seed: int = seed) -> dict[str, Any]:
            return train_and_evaluate(train_cfg, folder, data, split_seed=seed, resume=resume)

        try:
            metrics = in_run_folder(train_cfg, body, run_dir=run_dir)
        except MammoError:
            raise
        except Exception as exc:  # any other failure is this split's; the others still run
            log.exception("holdout split %d failed", split)
            error = f"{type(exc).__name__}: {exc}"
            failed.append(
                {"split": split, "split_seed": seed, "run_dir": run_dir.name, "error": error}
            )
            continue
        runs.append({"split": split, "run_dir": run_dir.name, **metrics})
    return runs, failed


def run(cfg: DictConfig) -> float:
    """Hydra task function; returns the mean validation AUC over the splits (for sweepers).

    A split that fails is recorded in ``holdout.json`` and the others still run; the
    command then exits with an error. A :class:`MammoError` (a mistake in the config or
    data, the same for every split) stops the holdout at once. With ``logger=mlflow`` the
    holdout is a parent MLflow run and each split a run nested in it.
    """
    resume = cfg.resume is not None
    if resume:
        cfg = resumed_config(cfg, CONFIG_FILE, HoldoutConfig)
    k = cfg.holdout.k
    if k < 2:
        raise MammoError(f"holdout.k={k}; expected at least 2 splits")
    check_logger(cfg.logger)
    data = load_task_data(cfg.data, cfg.task)  # loaded once, shared by every split
    import_tensorflow_quietly()

    root = current_run_dir()
    write_text(root / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    with tracked_run(cfg, root, RESULT_FILE):
        runs, failed = _train_splits(cfg, data, root, resume)
        result = summarize(cfg, runs, failed)
        table = holdout_report(cfg, result)
        write_json(root / RESULT_FILE, result)
        write_text(root / TABLE_FILE, table.to_markdown())
        print_table(table)
        print(f"run folder: {root}")
        if failed:
            first = failed[0]
            raise MammoError(
                f"{len(failed)} of {k} holdout splits failed (split {first['split']}: "
                f"{first['error']}); details in {root / RESULT_FILE}"
            )
    return float(result["validation_mean"]["auc"])
