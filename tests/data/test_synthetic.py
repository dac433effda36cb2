"""Tests of the synthetic demo data set (course format, determinism, class mix)."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_cli.data.synthetic import (
    DEMO_SEED,
    DEMO_TEST_PAIRS,
    DEMO_TRAIN_PAIRS,
    generate_pairs,
    write_demo_set,
)


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    return generate_pairs(200, seed=7)


def test_defaults() -> None:
    assert (DEMO_TRAIN_PAIRS, DEMO_TEST_PAIRS, DEMO_SEED) == (500, 150, 2024)


def test_course_format(sample: tuple[np.ndarray, np.ndarray]) -> None:
    tensor, labels = sample
    assert tensor.shape == (400, 150, 150)
    assert tensor.dtype == np.uint16
    assert labels.shape == (400,)
    assert labels.dtype == np.int64
    assert np.all(labels[0::2] == 0)
    assert np.all((labels[1::2] >= 1) & (labels[1::2] <= 4))
    # the full 16-bit range is used, not just a few low values
    assert tensor.max() > 50_000
    assert tensor.mean() > 10_000


def test_image_size_and_empty() -> None:
    tensor, labels = generate_pairs(3, seed=1, image_size=64)
    assert tensor.shape == (6, 64, 64)
    assert labels.shape == (6,)
    tensor, labels = generate_pairs(0, seed=1)
    assert tensor.shape == (0, 150, 150)
    assert labels.shape == (0,)


def test_deterministic() -> None:
    a_t, a_l = generate_pairs(20, seed=3)
    b_t, b_l = generate_pairs(20, seed=3)
    c_t, _ = generate_pairs(20, seed=4)
    assert np.array_equal(a_t, b_t)
    assert np.array_equal(a_l, b_l)
    assert not np.array_equal(a_t, c_t)


def test_class_proportions(sample: tuple[np.ndarray, np.ndarray]) -> None:
    abn = sample[1][1::2]
    mass = np.isin(abn, (1, 2)).mean()
    malignant = np.isin(abn, (2, 4)).mean()
    assert 0.36 <= mass <= 0.56  # ~46 % masses
    assert 0.31 <= malignant <= 0.51  # ~41 % malignant
    assert set(np.unique(abn)) == {1, 2, 3, 4}


def test_baselines_have_no_lesion(sample: tuple[np.ndarray, np.ndarray]) -> None:
    """A lesion is a local bright excess: compare patch max with the patch's own median."""
    tensor, labels = sample
    x = tensor.astype(np.float64) / 65535.0
    excess = x.max(axis=(1, 2)) - np.median(x, axis=(1, 2))
    base, abn = excess[0::2], excess[1::2]
    # within each pair the abnormality is usually the brighter-peaked patch ...
    assert np.mean(abn > base) > 0.7
    # ... and calcification specks in particular are extreme spots absent from baselines
    calc = np.isin(labels[1::2], (3, 4))
    assert np.median(abn[calc]) > np.median(base[calc]) + 0.05


def test_pair_shares_tissue(sample: tuple[np.ndarray, np.ndarray]) -> None:
    """Baseline and abnormality come from the same tissue: close in mean brightness."""
    tensor, _ = sample
    means = tensor.reshape(len(tensor), -1).mean(axis=1) / 65535.0
    within = np.abs(means[0::2] - means[1::2]).mean()
    shuffled = np.abs(means[0::2] - np.roll(means[1::2], 1)).mean()
    # adjacent halves of one strongly textured field still differ (dense/fatty areas are
    # larger than a patch), but clearly less than patches of unrelated pairs (~0.7 here)
    assert within < 0.8 * shuffled


def test_write_demo_set(tmp_path) -> None:
    out = write_demo_set(tmp_path / "demo", n_train_pairs=6, n_test_pairs=4, seed=11)
    assert out == tmp_path / "demo"
    names = {
        "train_tensor.npy": (12, 150, 150),
        "train_labels.npy": (12,),
        "public_test_tensor.npy": (8, 150, 150),
        "public_test_labels.npy": (8,),
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name, shape in names.items():
        arr = np.load(out / name, allow_pickle=False)
        assert arr.shape == shape
    train = np.load(out / "train_tensor.npy", allow_pickle=False)
    test = np.load(out / "public_test_tensor.npy", allow_pickle=False)
    assert not np.array_equal(train[:8], test)  # different random streams
    again = write_demo_set(tmp_path / "again", n_train_pairs=6, n_test_pairs=4, seed=11)
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes()
