"""Class weights: the study's balanced numbers and manual lists."""

from __future__ import annotations

import numpy as np

from mammo_cli.config import ClassWeightsConfig
from mammo_cli.training.class_weights import class_weights


def test_balanced_gives_the_study_numbers_for_benign_malignant():
    labels = np.array([0] * 1341 + [1] * 933)
    weights = class_weights(ClassWeightsConfig(kind="balanced"), labels, 2)
    assert [round(w, 2) for w in weights.values()] == [0.85, 1.22]


def test_balanced_gives_the_study_numbers_for_task_4():
    labels = np.array([0] * 2282 + [1] * 1041 + [2] * 1226)
    weights = class_weights(ClassWeightsConfig(kind="balanced"), labels, 3)
    assert [round(w, 2) for w in weights.values()] == [0.66, 1.46, 1.24]


def test_manual_and_none():
    labels = np.array([0, 1, 1])
    assert class_weights(ClassWeightsConfig(kind="none"), labels, 2) is None
    manual = ClassWeightsConfig(kind="manual", weights=[1.0, 1.25])
    assert class_weights(manual, labels, 2) == {0: 1.0, 1: 1.25}
