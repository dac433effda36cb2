"""Per-class loss weights: none, balanced (n / (k * n_c)) or a manual list."""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from mammo_cli.config import ClassWeightsConfig


def class_weights(
    cfg: ClassWeightsConfig, labels: np.ndarray, n_classes: int
) -> dict[int, float] | None:
    """Weights for Keras ``fit(class_weight=...)`` computed on the training labels.

    ``balanced`` is w_c = n_samples / (n_classes * n_samples_c), scikit-learn's
    "balanced" rule and the study's formula (1341 benign / 933 malignant -> 0.85 / 1.22).
    """
    if cfg.kind == "none":
        return None
    if cfg.kind == "balanced":
        weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=labels)
        return {index: float(w) for index, w in enumerate(weights)}
    return {index: float(w) for index, w in enumerate(cfg.weights)}
