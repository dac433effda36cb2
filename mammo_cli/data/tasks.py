"""Task views: which patches a task uses and which class each one becomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mammo_cli.data.course import (
    CourseSplit,
    aligned_rows,
    check_interleaving,
    to_model_input,
    with_channel_axis,
)
from mammo_cli.errors import MammoError

#: what a model takes: patches (N, 150, 150, 1), or for pairs tasks the tuple
#: (abnormalities, baselines) of two such arrays, in the siamese model's input order;
#: float32 in [0, 1], or still in their stored dtype where a tf.data pipeline scales them.
ModelInput = np.ndarray | tuple[np.ndarray, np.ndarray]

PAIRS_TASK_HINT = "a pairs task such as task=siamese needs them even with data.require_pairs=false"


@dataclass(frozen=True)
class TaskView:
    """The patches of one split that a task uses, with their class indices.

    For pairs tasks ``images`` are the abnormality patches and ``baselines`` the
    baseline patch of each (same order); otherwise ``baselines`` is None.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    #: index of each sample's patch in the course tensor (the abnormality's, for pairs)
    course_index: np.ndarray
    baselines: np.ndarray | None = None
    #: patient number of each sample, when the course folder records it
    groups: np.ndarray | None = None
    #: whether the course tensor interleaves baselines (2i) and abnormalities (2i+1)
    paired: bool = False

    def counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """Number of samples (patches, or pairs) per class name (of ``rows`` if given)."""
        labels = self.labels if rows is None else self.labels[rows]
        return class_counts(labels, self.class_names)

    def split(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, validation rows): the seeded stratified split every command
        uses (patient-grouped when the data records patients)."""
        from mammo_cli.data.splits import stratified_split

        return stratified_split(self.labels, val_fraction, seed, self.groups, self.class_names)

    def bootstrap_units(self) -> tuple[np.ndarray, str]:
        """What a bootstrap resamples as one unit, per sample, and its kind: the patient
        when the data records patients, else the course pair (a baseline and its
        abnormality are one unit when both are samples, as in task 4), else the sample."""
        if self.groups is not None:
            return self.groups, "patient"
        if self.baselines is not None:  # every sample is an (abnormality, baseline) pair
            return np.arange(len(self.labels)), "pair"
        if self.paired:
            pairs = self.course_index // 2
            return pairs, "pair" if len(np.unique(pairs)) < len(pairs) else "sample"
        return np.arange(len(self.labels)), "sample"

    def stored_input(self) -> ModelInput:
        """The model's input in the patches' stored dtype (views, no copy), for
        :func:`~mammo_cli.training.fit.make_dataset`, which scales each batch."""
        images = with_channel_axis(self.images)
        return images if self.baselines is None else (images, with_channel_axis(self.baselines))

    def model_input(self) -> ModelInput:
        """The model's input scaled to float32 in [0, 1]: patches, or the (abnormality,
        baseline) tuple of them."""
        images = to_model_input(self.images)
        return images if self.baselines is None else (images, to_model_input(self.baselines))


def class_counts(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    """Number of samples per class name, in class order (zeros included)."""
    per_class = np.bincount(labels, minlength=len(class_names))
    return {name: int(n) for name, n in zip(class_names, per_class, strict=True)}


def positive_class(classes: Sequence[str], positive: int | None) -> int | None:
    """The index of a binary task's positive class (the second class unless the task says
    otherwise); None for tasks with more classes."""
    if len(classes) != 2:
        return None
    return 1 if positive is None else int(positive)


class Samples(NamedTuple):
    """Samples to train or evaluate on: ``labels[k]`` is the class of sample ``rows[k]``
    of ``inputs`` (of sample ``k`` when ``rows`` is None). A train/validation split is two
    ``Samples`` sharing one ``inputs``, so no split copies the patches."""

    inputs: ModelInput
    labels: np.ndarray
    rows: np.ndarray | None = None


def take(inputs: ModelInput, index: np.ndarray) -> ModelInput:
    """The samples at ``index`` of a model input (both members of a pair together)."""
    if isinstance(inputs, tuple):
        return tuple(part[index] for part in inputs)  # type: ignore[return-value]
    return inputs[index]


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
    split: CourseSplit,
    classes: Mapping[str, Sequence[int]],
    split_name: str,
    pairs: bool = False,
    paired: bool = False,
) -> TaskView:
    """Keep the patches whose label belongs to one of ``classes`` and map them to indices.

    With ``pairs`` the samples are the (abnormality 2i+1, baseline 2i) pairs, classed by
    the abnormality's label; a broken interleaving is refused. ``paired`` says that the
    split's interleaving was checked (patch 2i is the baseline of 2i+1). Refuses a task whose class
    has no sample in this split (nothing could be learned or measured for it).
    """
    lookup = label_lookup(classes)
    if pairs:
        check_interleaving(split.labels, split.labels_path, hint=PAIRS_TASK_HINT)
        mapped = lookup[split.labels[1::2]]
        keep = np.flatnonzero(mapped >= 0)
        view = TaskView(
            images=aligned_rows(split.images, 2 * keep + 1),
            labels=mapped[keep],
            class_names=list(classes),
            course_index=2 * keep + 1,
            baselines=aligned_rows(split.images, 2 * keep),
            groups=None if split.groups is None else split.groups[2 * keep + 1],
            paired=True,
        )
    else:
        mapped = lookup[split.labels]
        keep = np.flatnonzero(mapped >= 0)
        view = TaskView(
            images=aligned_rows(split.images, keep),
            labels=mapped[keep],
            class_names=list(classes),
            course_index=keep,
            groups=None if split.groups is None else split.groups[keep],
            paired=paired,
        )
    empty = [name for name, n in view.counts().items() if n == 0]
    if empty:
        raise MammoError(
            f"class '{empty[0]}' has no patches in the {split_name} set ({split.tensor_path}); "
            "every class of the task needs examples"
        )
    return view
