"""The validation split: patient-grouped splits keep every class on both sides, or are
refused naming the class; unit tests on crafted patients, then the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from mammo_cli.data.splits import GROUPED_SHUFFLES, stratified_split
from mammo_cli.errors import MammoError
from tests.helpers import assert_user_error, read_metrics, run_mammo

#: scikit-learn warns of classes with fewer patients than folds, the cases these tests craft
pytestmark = pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")

TINY = ("task=2.1", "trainer.epochs=1", "trainer.batch_size=16", "trainer.progress=false")


def _first_fold(labels: np.ndarray, groups: np.ndarray, seed: int, n_splits: int = 7):
    """What the split was before it checked classes: the first fold of one shuffle."""
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return next(folds.split(labels, labels, groups))


def _rare_class_patients() -> tuple[np.ndarray, np.ndarray]:
    """60 patients of class 0 (1-3 samples each) and 2 patients of class 1 (3 each): with
    7 folds, most folds hold no class-1 patient."""
    sizes = np.resize([1, 2, 3], 60)
    groups = np.concatenate([np.repeat(np.arange(60), sizes), np.repeat([60, 61], 3)])
    labels = np.concatenate([np.zeros(sizes.sum(), int), np.ones(6, int)])
    return labels, groups


def test_a_grouped_split_takes_a_fold_that_holds_every_class():
    labels, groups = _rare_class_patients()
    missed = 0
    for seed in range(20):
        _, first_val = _first_fold(labels, groups, seed)
        missed += 1 not in labels[first_val]
        train, val = stratified_split(labels, 0.15, seed, groups=groups)
        assert set(labels[train]) == set(labels[val]) == {0, 1}
        assert not set(groups[train]) & set(groups[val])
        assert len(train) + len(val) == len(labels)
        np.testing.assert_array_equal(stratified_split(labels, 0.15, seed, groups=groups)[1], val)
    assert missed >= 5  # the first fold alone would have left class 1 out that often


def test_a_grouped_split_whose_first_fold_holds_every_class_is_that_fold():
    groups = np.repeat(np.arange(40), 2)
    labels = np.resize([0, 1], 80)  # every patient has both classes
    train, val = stratified_split(labels, 0.15, seed=3, groups=groups)
    expected_train, expected_val = _first_fold(labels, groups, seed=3)
    np.testing.assert_array_equal(val, np.sort(expected_val))
    np.testing.assert_array_equal(train, np.sort(expected_train))


def test_a_class_of_one_patient_is_refused_naming_it():
    labels = np.array([0] * 30 + [1] * 6)
    groups = np.concatenate([np.arange(30), np.full(6, 77)])
    with pytest.raises(MammoError, match="every sample of class 'calc' belongs to patient 77"):
        stratified_split(labels, 0.15, 0, groups=groups, class_names=["mass", "calc"])
    with pytest.raises(MammoError, match="data.patient_groups=false"):
        stratified_split(labels, 0.15, 0, groups=groups)


def test_a_grouped_split_that_no_shuffle_finds_is_refused():
    # patient 0: class 1; patient 1: classes 0 and 1; patient 2: class 0. A halving that
    # keeps both classes on both sides exists ({1} vs {0, 2}), but the stratified folds
    # always put the largest patient (2) alone with patient 1 or 0, never that halving.
    labels = np.array([1, 1, 0, 0, 0, 0, 0])
    groups = np.array([0, 1, 1, 2, 2, 2, 2])
    with pytest.raises(MammoError, match=f"{GROUPED_SHUFFLES} shuffles of the 3 patients"):
        stratified_split(labels, 0.5, 0, groups=groups)


def test_an_ungrouped_split_of_a_one_sample_class_is_refused():
    with pytest.raises(MammoError, match="cannot split 21 training samples"):
        stratified_split(np.array([0] * 20 + [1]), 0.15, 0)


# -- through the CLI: a tiny course folder with a train_groups.npy ------------------


def _course_with_patients(tiny_course: Path, folder: Path, calc_patients: int) -> Path:
    """A copy of the tiny course whose pairs are one patient each, except the task 2.1
    calcifications: the first ``calc_patients - 1`` are one patient each, the rest one
    more patient (number 100)."""
    shutil.copytree(tiny_course, folder)
    labels = np.load(folder / "train_labels.npy")
    patients = np.arange(len(labels) // 2)
    calcs = np.flatnonzero(np.isin(labels[1::2], [3, 4]))
    patients[calcs[calc_patients - 1 :]] = 100
    np.save(folder / "train_groups.npy", np.repeat(patients, 2))  # a pair is one patient
    return folder


def test_train_refuses_a_grouped_split_when_a_class_is_one_patient(tiny_course, tmp_path):
    data = _course_with_patients(tiny_course, tmp_path / "course", calc_patients=1)
    run = tmp_path / "run"
    result = run_mammo("train", *TINY, f"data.dir={data}", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_user_error(
        result,
        "patient-grouped 15% validation set",
        "every sample of class",
        "belongs to patient 100",
        "set data.patient_groups=false",
    )
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "belongs to patient 100" in status["error"]
    assert not {"metrics.json", "model.keras", "checkpoint"} & {p.name for p in run.iterdir()}

    again = tmp_path / "by_sample"
    args = (*TINY, f"data.dir={data}", "data.patient_groups=false", f"hydra.run.dir={again}")
    result = run_mammo("train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(again)
    assert min(metrics["counts"]["val"].values()) > 0
    assert metrics["split_grouped_by_patient"] is False
    assert metrics["validation"]["auc"] is not None


def test_describe_finds_a_grouped_split_with_every_class(tiny_course, tmp_path):
    data = _course_with_patients(tiny_course, tmp_path / "course", calc_patients=2)
    labels = np.load(data / "train_labels.npy")[1::2]
    classes = np.isin(labels, [3, 4]).astype(int)  # task 2.1: mass 0, calcification 1
    groups = np.load(data / "train_groups.npy")[1::2]
    # a seed whose first fold (what the run validated on before) holds no calcification
    seed = next(s for s in range(100) if 1 not in classes[_first_fold(classes, groups, s)[1]])
    out = tmp_path / "described"
    result = run_mammo(
        "data",
        "describe",
        "task=2.1",
        f"seed={seed}",
        f"data.dir={data}",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads((out / "describe.json").read_text())["counts"]
    assert counts["val"]["calcification"] > 0 and counts["val"]["mass"] > 0
    assert counts["train"]["calcification"] > 0 and counts["train"]["mass"] > 0
