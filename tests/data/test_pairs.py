"""Pair views for the siamese task: (abnormality 2i+1, baseline 2i), strict interleaving."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mammo_cli.config import DataConfig, TaskConfig
from mammo_cli.data.course import load_split, to_model_input
from mammo_cli.data.dataset import load_task_data
from mammo_cli.data.tasks import select_task, take
from mammo_cli.errors import MammoError

MASS_CALC = {"mass": [1, 2], "calcification": [3, 4]}


def pairs_task() -> TaskConfig:
    return TaskConfig(name="siamese", classes=MASS_CALC, positive_class=1, pairs=True)


def copy_course(tiny_course: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "course"
    shutil.copytree(tiny_course, folder)
    return folder


def test_pair_view_takes_abnormality_and_its_baseline(tiny_course):
    split = load_split(tiny_course, "train")
    view = select_task(split, MASS_CALC, "train", pairs=True)
    assert len(view.labels) == len(view.images) == len(view.baselines) == 40
    np.testing.assert_array_equal(view.images, split.images[1::2])
    np.testing.assert_array_equal(view.baselines, split.images[0::2])
    np.testing.assert_array_equal(view.labels, np.isin(split.labels[1::2], [3, 4]).astype(int))
    abnormality, baseline = view.model_input()
    np.testing.assert_array_equal(abnormality, to_model_input(split.images[1::2]))
    np.testing.assert_array_equal(baseline, to_model_input(split.images[0::2]))
    assert sum(view.counts().values()) == 40


def test_single_patch_views_have_no_baselines(tiny_course):
    view = select_task(load_split(tiny_course, "test"), MASS_CALC, "test")
    assert view.baselines is None and view.model_input().shape == (16, 150, 150, 1)


def test_take_keeps_the_members_of_a_pair_together():
    abnormality, baseline = np.arange(10) * 10, np.arange(10) * 10 + 1
    index = np.array([7, 2, 5])
    taken = take((abnormality, baseline), index)
    assert isinstance(taken, tuple)
    np.testing.assert_array_equal(taken[0] + 1, taken[1])
    np.testing.assert_array_equal(take(abnormality, index), [70, 20, 50])


@pytest.mark.parametrize(
    ("labels_file", "index", "label"),
    [
        ("train_labels.npy", 4, 3),  # a baseline slot holding an abnormality
        ("public_test_labels.npy", 7, 0),  # an abnormality slot holding a baseline
    ],
)
def test_pairs_task_refuses_broken_interleaving_even_when_waived(
    tiny_course, tmp_path, labels_file, index, label
):
    folder = copy_course(tiny_course, tmp_path)
    labels = np.load(folder / labels_file)
    labels[index] = label
    np.save(folder / labels_file, labels)
    message = f"label {label} at index {index}"
    data = DataConfig(dir=str(folder), require_pairs=False)
    with pytest.raises(MammoError, match=message) as refused:
        load_task_data(data, pairs_task())
    assert "task=siamese" in str(refused.value) and "\n" not in str(refused.value)
    single = TaskConfig(name="2.1", classes=MASS_CALC, positive_class=1)
    assert load_task_data(data, single).train is not None  # waived for single patches


def test_pairs_task_refuses_an_odd_count(tiny_course, tmp_path):
    folder = copy_course(tiny_course, tmp_path)
    for name in ("train_tensor.npy", "train_labels.npy"):
        np.save(folder / name, np.load(folder / name)[:-1])
    with pytest.raises(MammoError, match="odd number of labels"):
        load_task_data(DataConfig(dir=str(folder), require_pairs=False), pairs_task())
