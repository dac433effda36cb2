"""Brier score, expected calibration error and the reliability diagram."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from mammo_cli.evaluation.metrics import (
    brier_per_sample,
    classification_metrics,
    expected_calibration_error,
    reliability_bins,
)
from mammo_cli.evaluation.plots import save_reliability_diagram


def test_brier_by_hand():
    labels = np.array([0, 1, 2])
    probs = np.array([[0.8, 0.2, 0.0], [0.4, 0.6, 0.0], [0.5, 0.0, 0.5]])
    # (0.04 + 0.04) ; (0.16 + 0.16) ; (0.25 + 0 + 0.25)
    np.testing.assert_allclose(brier_per_sample(labels, probs), [0.08, 0.32, 0.5])
    m = classification_metrics(labels, probs, ["a", "b", "c"], None)
    assert m["brier"] == pytest.approx((0.08 + 0.32 + 0.5) / 3)


def test_brier_range_and_binary_relation_to_scikit_learn():
    """0 for certain right answers, 2 for certain wrong ones; on a binary task twice
    scikit-learn's one-column Brier score."""
    labels = np.array([0, 1])
    assert brier_per_sample(labels, np.eye(2)).tolist() == [0, 0]
    assert brier_per_sample(labels, np.eye(2)[::-1]).tolist() == [2, 2]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 100)
    positive = rng.random(100)
    probs = np.c_[1 - positive, positive]
    assert np.mean(brier_per_sample(labels, probs)) == pytest.approx(
        2 * brier_score_loss(labels, positive)
    )


def test_ece_by_hand():
    """Confidences 0.9 (right), 0.85 (wrong) fall in bin (0.8, 0.9]: accuracy 0.5 vs
    confidence 0.875; 0.65 and 0.7 (both right; 0.7 is the bin's closed upper edge) in
    (0.6, 0.7]: accuracy 1 vs 0.675. ECE = 2/4 * 0.375 + 2/4 * 0.325 = 0.35."""
    labels = np.array([0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.85, 0.15], [0.35, 0.65], [0.3, 0.7]])
    binned = reliability_bins(labels, probs)
    assert binned.counts.tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 2, 0]
    assert binned.accuracy[6] == 1.0
    assert binned.accuracy[8] == 0.5
    assert binned.confidence[8] == pytest.approx(0.875)
    assert np.isnan(binned.accuracy[0])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.35)
    m = classification_metrics(labels, probs, ["a", "b"], 1)
    assert m["ece"] == pytest.approx(0.35)


def test_calibrated_model_has_small_ece_and_an_overconfident_one_does_not():
    """Labels drawn from the predicted probabilities themselves are calibrated by
    construction: ECE is only binning and sampling noise (< 0.02 on 20,000 samples)."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], 20_000)
    labels = (rng.random(20_000)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    assert expected_calibration_error(labels, probs) < 0.02
    sharpened = probs**4  # same arg-max, over-confident
    assert expected_calibration_error(labels, sharpened) > 0.1


def test_reliability_diagram_png(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([2.0, 2.0], 50)
    labels = rng.integers(0, 2, 50)
    path = save_reliability_diagram(labels, probs, tmp_path / "calibration.png", "task 2.1")
    assert path == tmp_path / "calibration.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > image.shape[1] > 300  # two panels, one above the other
    assert list(tmp_path.iterdir()) == [path]  # written whole, no temp file left
