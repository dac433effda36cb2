"""Task views: which patches a task uses and which class each one becomes (SPEC 1.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mammo_cli.data.course import CourseSplit
from mammo_cli.errors import MammoError


@dataclass(frozen=True)
class TaskView:
    """The patches of one split that a task uses, with their class indices."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def counts(self) -> dict[str, int]:
        """Number of patches per class name."""
        per_class = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, per_class, strict=True)}


def label_lookup(classes: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Map course labels 0..4 to class indices; -1 marks labels the task drops."""
    lookup = np.full(5, -1, dtype=np.int64)
    for index, raw_labels in enumerate(classes.values()):
        for raw in raw_labels:
            if lookup[raw] != -1:
                raise MammoError(f"task.classes maps course label {raw} to two classes")
            lookup[raw] = index
    return lookup


def select_task(
    split: CourseSplit, classes: Mapping[str, Sequence[int]], split_name: str
) -> TaskView:
    """Keep the patches whose label belongs to one of ``classes`` and map them to indices.

    Refuses a task whose class has no patch in this split (nothing could be learned or
    measured for it).
    """
    lookup = label_lookup(classes)
    mapped = lookup[split.labels]
    keep = np.flatnonzero(mapped >= 0)
    view = TaskView(
        images=np.asarray(split.images[keep]),
        labels=mapped[keep],
        class_names=list(classes),
    )
    empty = [name for name, n in view.counts().items() if n == 0]
    if empty:
        raise MammoError(
            f"class '{empty[0]}' has no patches in the {split_name} set ({split.tensor_path}); "
            "every class of the task needs examples"
        )
    return view
