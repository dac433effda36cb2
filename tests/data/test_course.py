"""Course-format loading: every bad input of the course format (docs/data.md) is refused,
at the boundary and through the real CLI (exit status 2, one line, no artifact that
claims success)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mammo_cli.data.course import TENSOR_ALIGNMENT, aligned_rows, load_split, to_model_input
from mammo_cli.data.splits import stratified_split
from mammo_cli.data.tasks import select_task
from mammo_cli.errors import MammoError
from tests.helpers import assert_user_error, run_folders, run_mammo


def copy_course(tiny_course: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "course"
    shutil.copytree(tiny_course, folder)
    return folder


def _pickled(folder: Path) -> str:
    np.save(folder / "train_labels.npy", np.array([{"x": 1}] * 80, dtype=object), allow_pickle=True)
    return "pickled/object array"


def _truncated(folder: Path) -> str:
    path = folder / "train_tensor.npy"
    path.write_bytes(path.read_bytes()[:5000])
    return "train_tensor.npy: truncated .npy file: its header announces shape (80, 150, 150)"


def npy_bytes(header: str, data: bytes = b"") -> bytes:
    """A version 1.0 .npy file with ``header`` as its (possibly broken) header text."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def _unclosed_brace(folder: Path) -> str:
    header = "{'descr': '<u2', 'fortran_order': False, 'shape': (80, 150, 150), "
    (folder / "train_tensor.npy").write_bytes(npy_bytes(header))
    return "train_tensor.npy: malformed .npy header (EOF in multi-line statement)"


def _negative_dimension(folder: Path) -> str:
    header = "{'descr': '<u2', 'fortran_order': False, 'shape': (80, -150, 150), }"
    (folder / "train_tensor.npy").write_bytes(npy_bytes(header, bytes(4096)))
    return "train_tensor.npy: malformed .npy header: shape (80, -150, 150) has a negative dimension"


def _records(folder: Path) -> str:
    records = np.zeros(80, dtype=[("label", "<i8"), ("weight", "<f4")])
    np.save(folder / "train_labels.npy", records)
    return "train_labels.npy: holds records ([('label', '<i8'), ('weight', '<f4')])"


def _not_npy(folder: Path) -> str:
    (folder / "public_test_labels.npy").write_text("0,1,0,2\n")
    return "public_test_labels.npy: not a .npy file (it lacks numpy's \\x93NUMPY signature)"


def _npz(folder: Path) -> str:
    np.savez(folder / "train.npz", np.load(folder / "train_tensor.npy"))
    (folder / "train.npz").replace(folder / "train_tensor.npy")
    return "train_tensor.npy: an .npz archive"


def _empty_file(folder: Path) -> str:
    (folder / "train_labels.npy").write_bytes(b"")
    return "train_labels.npy: not a .npy file (it is empty)"


def _wrong_rank(folder: Path) -> str:
    np.save(folder / "train_tensor.npy", np.zeros((80, 150 * 150), dtype=np.uint16))
    return "expected (N, 150, 150)"


def _wrong_size(folder: Path) -> str:
    np.save(folder / "train_tensor.npy", np.zeros((80, 128, 128), dtype=np.uint16))
    return "has shape (80, 128, 128)"


def _nan(folder: Path) -> str:
    images = np.load(folder / "train_tensor.npy").astype(np.float32) / 65535
    images[3, 10, 10] = np.nan
    np.save(folder / "train_tensor.npy", images)
    return "NaN or inf (first at patch 3)"


def _inf(folder: Path) -> str:
    images = np.load(folder / "train_tensor.npy").astype(np.float32) / 65535
    images[5, 0, 0] = np.inf
    np.save(folder / "train_tensor.npy", images)
    return "NaN or inf"


def _label_7(folder: Path) -> str:
    labels = np.load(folder / "train_labels.npy")
    labels[1] = 7
    np.save(folder / "train_labels.npy", labels)
    return "holds label 7; expected 0..4"


def _label_minus_1(folder: Path) -> str:
    labels = np.load(folder / "public_test_labels.npy")
    labels[3] = -1
    np.save(folder / "public_test_labels.npy", labels)
    return "holds label -1"


def _length_mismatch(folder: Path) -> str:
    np.save(folder / "train_labels.npy", np.load(folder / "train_labels.npy")[:-2])
    return "has 78 labels but"


def _broken_pairs(folder: Path) -> str:
    labels = np.load(folder / "train_labels.npy")
    labels[[0, 1]] = labels[[1, 0]]
    np.save(folder / "train_labels.npy", labels)
    return "breaks the pairing"


def _missing_file(folder: Path) -> str:
    (folder / "public_test_tensor.npy").unlink()
    return "missing file"


def _empty_class(folder: Path) -> str:
    labels = np.load(folder / "train_labels.npy")
    labels[labels == 4] = 3  # no malignant calcification, so task 2.1 still works...
    labels[labels == 2] = 1  # ...but task 2.2 has no malignant patch at all
    np.save(folder / "train_labels.npy", labels)
    return "class 'malignant' has no patches in the train set"


BAD_INPUTS = [
    _pickled,
    _truncated,
    _unclosed_brace,
    _negative_dimension,
    _records,
    _not_npy,
    _npz,
    _empty_file,
    _wrong_rank,
    _wrong_size,
    _nan,
    _inf,
    _label_7,
    _label_minus_1,
    _length_mismatch,
    _broken_pairs,
    _missing_file,
    _empty_class,
]


@pytest.mark.parametrize("spoil", BAD_INPUTS, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_is_refused_by_the_cli(spoil, tiny_course, tmp_path):
    folder = copy_course(tiny_course, tmp_path)
    expected = spoil(folder)
    result = run_mammo("train", "task=2.2", f"data.dir={folder}", "trainer.epochs=1", cwd=tmp_path)
    assert_user_error(result, expected)
    for run in run_folders(tmp_path / "outputs"):
        assert not (run / "metrics.json").exists()
        assert not (run / "model.keras").exists()


@pytest.mark.parametrize(
    "spoil", [_unclosed_brace, _negative_dimension, _truncated], ids=lambda f: f.__name__.strip("_")
)
def test_describe_refuses_an_unreadable_npy_file(spoil, tiny_course, tmp_path):
    folder = copy_course(tiny_course, tmp_path)
    expected = spoil(folder)
    result = run_mammo("data", "describe", f"data.dir={folder}", cwd=tmp_path)
    assert_user_error(result, f"{folder}/{expected}")


def test_missing_data_folder(tmp_path):
    result = run_mammo("train", f"data.dir={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert_user_error(result, "is not a folder")


def test_loads_memory_mapped_and_scales_to_unit_range(tiny_course):
    split = load_split(tiny_course, "train")
    assert isinstance(split.images, np.memmap)
    x = to_model_input(split.images)
    assert x.shape == (80, 150, 150, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x[0, :, :, 0], split.images[0] / 65535.0, rtol=1e-6)


def test_float_input_in_unit_range_is_kept_and_rank4_accepted(tmp_path, tiny_course):
    folder = copy_course(tiny_course, tmp_path)
    images = (np.load(folder / "train_tensor.npy") / 65535.0).astype(np.float32)[..., None]
    np.save(folder / "train_tensor.npy", images)
    x = to_model_input(load_split(folder, "train").images)
    np.testing.assert_array_equal(x, images)


def test_floats_outside_unit_range_are_refused(tmp_path, tiny_course):
    folder = copy_course(tiny_course, tmp_path)
    np.save(folder / "train_tensor.npy", np.load(folder / "train_tensor.npy").astype(np.float32))
    with pytest.raises(MammoError, match=r"outside \[0, 1\]"):
        load_split(folder, "train")


def test_pairs_can_be_waived_for_data_without_baselines(tmp_path, tiny_course):
    folder = copy_course(tiny_course, tmp_path)
    labels = np.load(folder / "train_labels.npy")
    np.save(folder / "train_labels.npy", labels[1::2])
    np.save(folder / "train_tensor.npy", np.load(folder / "train_tensor.npy")[1::2])
    with pytest.raises(MammoError, match="pairing"):
        load_split(folder, "train")
    assert len(load_split(folder, "train", require_pairs=False).labels) == 40


def test_task_views_map_labels(tiny_course):
    split = load_split(tiny_course, "train")
    mass_calc = select_task(split, {"mass": [1, 2], "calcification": [3, 4]}, "train")
    assert len(mass_calc.labels) == 40  # baselines dropped
    expected = np.where(np.isin(split.labels[1::2], [3, 4]), 1, 0)
    np.testing.assert_array_equal(mass_calc.labels, expected)
    three = select_task(split, {"baseline": [0], "mass": [1, 2], "calcification": [3, 4]}, "train")
    assert len(three.labels) == 80 and three.counts()["baseline"] == 40
    np.testing.assert_array_equal(mass_calc.images, split.images[1::2])


def test_task_views_copy_the_patches_into_aligned_memory(tiny_course):
    """Aligned, so TensorFlow shares the task's patches instead of copying them."""
    split = load_split(tiny_course, "train")
    index = np.array([5, 0, 7, 7])
    rows = aligned_rows(split.images, index)
    assert rows.ctypes.data % TENSOR_ALIGNMENT == 0 and rows.flags.c_contiguous
    assert rows.dtype == split.images.dtype and not isinstance(rows, np.memmap)
    np.testing.assert_array_equal(rows, split.images[index])


def test_stratified_split_is_seeded_and_keeps_proportions():
    labels = np.array([0] * 60 + [1] * 40)
    train, val = stratified_split(labels, 0.15, seed=3)
    assert len(val) == 15 and len(set(train) & set(val)) == 0
    assert np.bincount(labels[val]).tolist() == [9, 6]
    again, _ = stratified_split(labels, 0.15, seed=3)
    other, _ = stratified_split(labels, 0.15, seed=4)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_validation_split_is_grouped_by_patient_when_the_folder_records_patients(
    tmp_path, tiny_course
):
    folder = copy_course(tiny_course, tmp_path)
    patients = np.repeat(np.arange(40) // 2, 2)  # two pairs (four patches) per patient
    np.save(folder / "train_groups.npy", patients)
    view = select_task(load_split(folder, "train"), {"mass": [1, 2], "calc": [3, 4]}, "train")
    np.testing.assert_array_equal(view.groups, patients[1::2])
    train, val = stratified_split(view.labels, 0.15, seed=0, groups=view.groups)
    assert not set(view.groups[train]) & set(view.groups[val])
    assert 0.08 <= len(val) / len(view.labels) <= 0.25
    again, _ = stratified_split(view.labels, 0.15, seed=0, groups=view.groups)
    np.testing.assert_array_equal(train, again)
    assert load_split(folder, "train", patient_groups=False).groups is None
    assert load_split(folder, "test").groups is None


def test_a_malformed_groups_file_is_refused(tmp_path, tiny_course):
    folder = copy_course(tiny_course, tmp_path)
    np.save(folder / "train_groups.npy", np.zeros(7, dtype=np.int64))
    with pytest.raises(MammoError, match="one integer patient number per training patch"):
        load_split(folder, "train")
