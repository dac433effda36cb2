"""data.limit: at most N samples per split of the task view, stratified, deterministic."""

from __future__ import annotations

import numpy as np

from mammo_cli.data.dataset import limited
from mammo_cli.data.tasks import TaskView


def view(labels: list[int], names: tuple[str, ...] = ("a", "b", "c")) -> TaskView:
    """A task view whose patch i is filled with the value i (and so is its group)."""
    n = len(labels)
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 150, 150))
    return TaskView(
        images=np.ascontiguousarray(images),
        labels=np.array(labels),
        class_names=list(names),
        course_index=2 * np.arange(n) + 1,
        baselines=np.ascontiguousarray(images) + 100,
        groups=np.arange(n),
        paired=True,
    )


def test_each_class_in_proportion_largest_remainder_up_evenly_spaced():
    """30/10/2 samples, limit 10: shares 7.14/2.38/0.48 -> 7/2/1 (the largest remainder,
    class c's, rounds up), picked at round(linspace) through each class in order."""
    full = view([0] * 30 + [1] * 10 + [2] * 2)
    small = limited(full, 10)
    keep = [0, 5, 10, 14, 19, 24, 29, 30, 39, 40]
    assert small.labels.tolist() == [0] * 7 + [1] * 2 + [2]
    assert small.course_index.tolist() == [2 * i + 1 for i in keep]
    assert small.images[:, 0, 0].tolist() == keep and small.groups.tolist() == keep
    assert small.baselines[:, 0, 0].tolist() == [i + 100 for i in keep]
    assert small.class_names == full.class_names and small.paired
    again = limited(full, 10)
    assert again.course_index.tolist() == small.course_index.tolist()


def test_every_class_keeps_a_sample_and_a_large_limit_keeps_the_view():
    full = view([0] * 50 + [1], names=("a", "b"))
    small = limited(full, 2)  # shares 1.96/0.04: class b would get none
    assert small.labels.tolist() == [0, 1] and small.course_index.tolist() == [1, 101]
    assert limited(full, 51) is full and limited(full, 500) is full
