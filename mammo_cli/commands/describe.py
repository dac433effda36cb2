"""``mammo data describe``: look at a data set before training on it.

Prints the counts per class and split, and writes into a run folder ``describe.json``,
``label_distribution.png`` (study figure 1: both task groupings), ``split_distribution.png``
(figure 5: training vs validation classes after the seeded split) and ``samples.png``
(a few patches per class, each abnormality next to its baseline). No TensorFlow needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mammo_cli.data.course import RAW_LABELS, load_split
from mammo_cli.data.dataset import limited
from mammo_cli.data.source import resolve_data_dir
from mammo_cli.data.tasks import select_task
from mammo_cli.evaluation.plots import (
    save_label_distribution,
    save_samples,
    save_split_distribution,
)
from mammo_cli.files import write_json


def _raw_counts(labels: np.ndarray) -> dict[str, int]:
    per_label = np.bincount(labels, minlength=len(RAW_LABELS))
    return {name: int(n) for name, n in zip(RAW_LABELS, per_label, strict=True)}


def describe(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Load the data as ``cfg`` says, write the figures and ``describe.json``; return it."""
    folder = resolve_data_dir(cfg.data.dir, cfg.data.cache_dir)
    splits = {
        name: load_split(folder, name, cfg.data.require_pairs, cfg.data.patient_groups)
        for name in ("train", "test")
    }
    train_view = select_task(splits["train"], cfg.task.classes, "train")
    test_view = select_task(splits["test"], cfg.task.classes, "test")
    if cfg.data.limit is not None:  # the counts a training with this config sees
        train_view, test_view = (limited(v, cfg.data.limit) for v in (train_view, test_view))
    class_names = train_view.class_names
    train_idx, val_idx = train_view.split(cfg.trainer.val_split, cfg.seed)
    result = {
        "data_dir": str(folder),
        "raw_counts": {name: _raw_counts(split.labels) for name, split in splits.items()},
        "task": cfg.task.name,
        "class_names": class_names,
        "counts": {
            "train": train_view.counts(train_idx),
            "val": train_view.counts(val_idx),
            "test": test_view.counts(),
        },
        "seed": cfg.seed,
        "val_split": cfg.trainer.val_split,
    }
    save_label_distribution(result["raw_counts"], run_dir / "label_distribution.png")
    save_split_distribution(
        result["counts"]["train"], result["counts"]["val"], run_dir / "split_distribution.png"
    )
    save_samples(
        splits["train"].images,
        splits["train"].labels,
        cfg.samples_per_class,
        paired=cfg.data.require_pairs,
        path=run_dir / "samples.png",
        seed=cfg.seed,
    )
    write_json(run_dir / "describe.json", result)
    return result


def _counts_table(result: dict[str, Any]) -> Table:
    table = Table(title=escape(f"{result['data_dir']}: task {result['task']}"), header_style="bold")
    table.add_column("class")
    for split in ("train", "val", "test"):
        table.add_column(split, justify="right")
    for name in result["class_names"]:
        table.add_row(name, *(str(result["counts"][s][name]) for s in ("train", "val", "test")))
    table.add_section()
    for label in RAW_LABELS:
        raw = result["raw_counts"]
        table.add_row(
            f"course label: {label}", str(raw["train"][label]), "", str(raw["test"][label])
        )
    return table


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """``mammo data describe``: describe the data into ``run_dir``; return describe.json."""
    return describe(cfg, run_dir)


def show(cfg: DictConfig, result: dict[str, Any], run_dir: Path) -> None:
    """Print the counts per class and split, and the run folder."""
    Console().print(_counts_table(result))
    print(f"run folder: {run_dir}")
