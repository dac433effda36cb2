"""The tf.data input: splits pick rows of one shared patch tensor, scaled per batch."""

from __future__ import annotations

import numpy as np

from mammo_cli.data.course import aligned_rows
from mammo_cli.data.tasks import take
from mammo_cli.training.fit import host_tensors, make_dataset, prediction_dataset


def patches(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 65535, (n, 150, 150, 1), dtype=np.uint16)
    return aligned_rows(stored, np.arange(n))


def test_aligned_patches_are_shared_with_tensorflow_and_others_copied():
    shared = patches(3)
    tensor = host_tensors(shared)
    shared[0, 0, 0, 0] = 7  # the tensor sees a write to the array: one copy in memory
    assert int(tensor[0, 0, 0, 0]) == 7
    unaligned = np.ascontiguousarray(
        np.zeros((3 * 22500 + 1), np.uint16)[1:].reshape(3, 150, 150, 1)
    )
    copied = host_tensors(unaligned)
    unaligned[0, 0, 0, 0] = 7
    assert int(copied[0, 0, 0, 0]) == 0
    big_endian = aligned_rows(shared.astype(">u2"), np.arange(3))  # from a big-endian .npy
    assert big_endian.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(host_tensors(big_endian).numpy(), shared)


def test_rows_pick_the_same_batches_as_a_copied_split():
    """A split given as rows of the shared patches trains on exactly what a copy of
    those rows gave: same batches, same seeded shuffle, scaled to [0, 1]."""
    images, labels = patches(12), np.arange(12) % 2
    rows = np.array([11, 3, 4, 0, 8, 9, 1])
    by_rows = make_dataset(images, labels[rows], 2, 3, rows=rows, shuffle_seed=5)
    copied = make_dataset(take(images, rows), labels[rows], 2, 3, shuffle_seed=5)
    for (x_rows, y_rows), (x_copy, y_copy) in zip(by_rows, copied, strict=True):
        np.testing.assert_array_equal(x_rows.numpy(), x_copy.numpy())
        np.testing.assert_array_equal(y_rows.numpy(), y_copy.numpy())
    first = next(iter(make_dataset(images, labels[rows], 2, 7, rows=rows)))[0].numpy()
    np.testing.assert_allclose(first, images[rows] / 65535, rtol=1e-6)


def test_prediction_batches_follow_the_rows_in_order():
    images, rows = patches(10), np.array([9, 2, 2, 5])
    pairs = (images, images[::-1].copy())
    batches = [x for (x,) in prediction_dataset(pairs, 3, rows)]
    abnormal = np.concatenate([a.numpy() for a, _ in batches])
    baseline = np.concatenate([b.numpy() for _, b in batches])
    np.testing.assert_allclose(abnormal, images[rows] / 65535, rtol=1e-6)
    np.testing.assert_allclose(baseline, images[::-1][rows] / 65535, rtol=1e-6)
