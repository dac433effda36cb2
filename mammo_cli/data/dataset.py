"""From a config to the patches of a task: resolve the folder, load, validate, select."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mammo_cli.config import DataConfig, TaskConfig
from mammo_cli.data.course import load_split
from mammo_cli.data.source import resolve_data_dir
from mammo_cli.data.tasks import TaskView, select_task


@dataclass(frozen=True)
class TaskData:
    """The training and test views of one task on one course folder."""

    folder: Path
    train: TaskView | None
    test: TaskView


def load_task_data(data: DataConfig, task: TaskConfig, with_train: bool = True) -> TaskData:
    """Load the course folder named by ``data`` (or the demo set) as ``task`` sees it."""
    folder = resolve_data_dir(data.dir, data.cache_dir)

    def view(split: str) -> TaskView:
        # A pairs task checks the pairing itself, with its own message.
        course = load_split(
            folder,
            split,
            require_pairs=data.require_pairs and not task.pairs,
            patient_groups=data.patient_groups,
        )
        return select_task(course, task.classes, split, pairs=task.pairs, paired=data.require_pairs)

    return TaskData(folder=folder, train=view("train") if with_train else None, test=view("test"))
