"""The scikit-learn baseline's features and pipeline, on hand-made patches with known
answers; and that it needs no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from mammo_cli.config import register_configs
from mammo_cli.errors import MammoError
from mammo_cli.models import baseline
from mammo_cli.models.baseline import (
    GRID,
    HISTOGRAM_BINS,
    INTENSITY_QUANTILES,
    baseline_features,
    fit_baseline,
    patch_features,
    predict_baseline,
)

FULL = np.iinfo(np.uint16).max
#: where each group of features starts in a patch's feature row
N_GRID = GRID * GRID
N_INTENSITY = len(INTENSITY_QUANTILES) + 1  # quantiles, standard deviation
HISTOGRAM = slice(N_GRID + N_INTENSITY, N_GRID + N_INTENSITY + HISTOGRAM_BINS)
TEXTURE = slice(HISTOGRAM.stop, None)  # gradient and fine-detail statistics


def config(*overrides: str) -> DictConfig:
    """The config ``mammo baseline task=2.1 <overrides>`` composes (mass vs calcification)."""
    register_configs()
    with initialize_config_module(config_module="mammo_cli.conf", version_base="1.3"):
        return compose(config_name="baseline", overrides=["task='2.1'", *overrides])


def bright_and_dark(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy uint16 patches (N, 150, 150, 1): class 1 bright, class 0 dark."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    level = np.where(labels == 1, 0.6, 0.3)[:, None, None, None]
    patches = np.clip(level + 0.05 * rng.standard_normal((n, 150, 150, 1)), 0, 1)
    return (patches * FULL).astype(np.uint16), labels


def test_a_constant_patch_has_its_level_everywhere_and_no_texture():
    stored = round(0.25 * FULL)
    level = stored / FULL
    features = patch_features(np.full((1, 150, 150), stored, dtype=np.uint16))[0]
    np.testing.assert_allclose(features[:N_GRID], level, atol=1e-6)  # block means
    np.testing.assert_allclose(features[N_GRID : N_GRID + N_INTENSITY - 1], level, atol=1e-6)
    assert features[N_GRID + N_INTENSITY - 1] == pytest.approx(0, abs=1e-6)  # std
    histogram = np.zeros(HISTOGRAM_BINS)
    histogram[int(level * HISTOGRAM_BINS)] = 1.0  # every pixel in bin 4 of 16
    np.testing.assert_array_equal(features[HISTOGRAM], histogram)
    np.testing.assert_allclose(features[TEXTURE], 0, atol=1e-6)


def test_the_grid_and_histogram_of_a_half_dark_half_bright_patch():
    patch = np.zeros((1, 150, 150), dtype=np.uint16)
    patch[:, :, 75:] = FULL
    features = patch_features(patch)[0]
    grid = features[:N_GRID].reshape(GRID, GRID)
    np.testing.assert_array_equal(grid, np.tile([0, 0, 0, 0, 1, 1, 1, 1], (GRID, 1)))
    histogram = features[HISTOGRAM]
    assert histogram[0] == histogram[-1] == 0.5 and histogram.sum() == 1.0
    assert features[TEXTURE].max() > 0.1  # the edge between the halves


def test_stored_integers_and_floats_in_0_1_give_the_same_features():
    patches, _ = bright_and_dark(4, seed=0)
    as_float = patches.astype(np.float32) / FULL
    np.testing.assert_allclose(patch_features(patches), patch_features(as_float), atol=1e-5)


def test_features_are_computed_chunk_by_chunk_and_of_the_rows_asked(monkeypatch):
    patches, _ = bright_and_dark(7, seed=1)
    whole = patch_features(patches)
    monkeypatch.setattr(baseline, "CHUNK", 3)  # 3 + 3 + 1 patches
    np.testing.assert_array_equal(patch_features(patches), whole)
    rows = np.array([5, 0, 2])
    np.testing.assert_array_equal(patch_features(patches, rows), whole[rows])


def test_pair_features_are_the_abnormality_and_its_difference_to_the_baseline():
    abnormalities, _ = bright_and_dark(4, seed=2)
    baselines, _ = bright_and_dark(4, seed=3)
    features = baseline_features((abnormalities, baselines), rows=np.array([1, 3]))
    first, second = patch_features(abnormalities[[1, 3]]), patch_features(baselines[[1, 3]])
    np.testing.assert_array_equal(features, np.hstack([first, first - second]))


@pytest.mark.parametrize("model", ["logistic", "random_forest"])
def test_the_baseline_learns_a_separable_task_and_is_repeatable(model):
    patches, labels = bright_and_dark(24, seed=4)
    test, test_labels = bright_and_dark(10, seed=5)
    cfg = config(f"baseline.model={model}", "seed=7")
    probs = predict_baseline(fit_baseline(cfg, patches, labels), test)
    assert probs.shape == (10, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs.argmax(axis=1), test_labels)
    again = predict_baseline(fit_baseline(cfg, patches, labels), test)
    np.testing.assert_array_equal(probs, again)


def test_the_pipeline_scales_then_classifies_with_the_configured_model():
    patches, labels = bright_and_dark(12, seed=6)
    logistic = fit_baseline(config(), patches, labels)
    forest = fit_baseline(config("baseline.model=random_forest", "seed=3"), patches, labels)
    assert [name for name, _ in logistic.steps] == ["scale", "classify"]
    assert isinstance(logistic[-1], LogisticRegression)
    assert isinstance(forest[-1], RandomForestClassifier) and forest[-1].random_state == 3


def test_class_weights_map_to_scikit_learn_class_weight():
    patches, labels = bright_and_dark(12, seed=7)
    labels[:4] = 0  # 8 of class 0, 4 of class 1
    none = fit_baseline(config(), patches, labels)
    assert none[-1].class_weight is None
    balanced = fit_baseline(config("class_weights=balanced"), patches, labels)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
    assert balanced[-1].class_weight == pytest.approx({0: expected[0], 1: expected[1]})
    assert balanced[-1].class_weight == pytest.approx({0: 0.75, 1: 1.5})  # 12 / (2 * n_c)
    manual = fit_baseline(
        config("class_weights=manual", "class_weights.weights=[1.0,1.25]"),
        patches,
        labels,
    )
    assert manual[-1].class_weight == {0: 1.0, 1: 1.25}


def test_a_training_split_without_a_class_is_refused():
    patches, labels = bright_and_dark(6, seed=8)
    with pytest.raises(MammoError, match="no sample of class calcification"):
        fit_baseline(config(), patches, np.zeros_like(labels))


def test_importing_the_baseline_imports_no_tensorflow():
    probe = "import sys, mammo_cli.models.baseline; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
