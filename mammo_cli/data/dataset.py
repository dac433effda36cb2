"""From a config to the patches of a task: resolve the folder, load, validate, select."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_cli.config import DataConfig, TaskConfig
from mammo_cli.data.course import aligned_rows, load_split
from mammo_cli.data.source import resolve_data_dir
from mammo_cli.data.tasks import TaskView, select_task


@dataclass(frozen=True)
class TaskData:
    """The training and test views of one task on one course folder."""

    folder: Path
    train: TaskView | None
    test: TaskView


def load_task_data(data: DataConfig, task: TaskConfig, with_train: bool = True) -> TaskData:
    """Load the course folder named by ``data`` (or the demo set) as ``task`` sees it;
    with ``data.limit``, at most that many samples of each split (:func:`limited`)."""
    folder = resolve_data_dir(data.dir, data.cache_dir)

    def view(split: str) -> TaskView:
        # A pairs task checks the pairing itself, with its own message.
        course = load_split(
            folder,
            split,
            require_pairs=data.require_pairs and not task.pairs,
            patient_groups=data.patient_groups,
        )
        selected = select_task(
            course, task.classes, split, pairs=task.pairs, paired=data.require_pairs
        )
        return selected if data.limit is None else limited(selected, data.limit)

    return TaskData(folder=folder, train=view("train") if with_train else None, test=view("test"))


def limited(view: TaskView, limit: int) -> TaskView:
    """At most ``limit`` samples of ``view`` (``limit`` >= its number of classes): each
    class in proportion to its count (largest remainders round up) and at least once,
    taken evenly spaced through that class's samples, in their order. No randomness: the
    same view and limit always give the same samples."""
    n_samples = len(view.labels)
    if limit >= n_samples:
        return view
    rows_of = [np.flatnonzero(view.labels == c) for c in range(len(view.class_names))]
    shares = np.array([len(rows) for rows in rows_of]) * limit / n_samples
    taken = np.floor(shares).astype(int)
    by_remainder = np.argsort(taken - shares, kind="stable")
    taken[by_remainder[: limit - taken.sum()]] += 1
    for empty in np.flatnonzero(taken == 0):  # from the largest class, one for each
        taken[np.argmax(taken)] -= 1
        taken[empty] = 1
    keep = np.sort(
        np.concatenate(
            [
                rows[np.round(np.linspace(0, len(rows) - 1, k)).astype(int)]
                for rows, k in zip(rows_of, taken, strict=True)
            ]
        )
    )
    return dataclasses.replace(
        view,
        images=aligned_rows(view.images, keep),
        labels=view.labels[keep],
        course_index=view.course_index[keep],
        baselines=None if view.baselines is None else aligned_rows(view.baselines, keep),
        groups=None if view.groups is None else view.groups[keep],
    )
