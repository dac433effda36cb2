"""The seeded, stratified train/validation split (15 % by default), grouped by patient
when the data records patients."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from mammo_cli.errors import MammoError


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train indices, validation indices), stratified by ``labels``, repeatable.

    With ``groups`` (a patient number per sample) no group is split between the two
    parts: the validation part is the first fold of a shuffled ``StratifiedGroupKFold``
    with ``round(1 / val_fraction)`` folds, so its share is close to ``val_fraction``.
    """
    indices = np.arange(len(labels))
    try:
        if groups is None:
            train_idx, val_idx = train_test_split(
                indices, test_size=val_fraction, stratify=labels, random_state=seed
            )
        else:
            folds = StratifiedGroupKFold(
                n_splits=max(2, round(1 / val_fraction)), shuffle=True, random_state=seed
            )
            train_idx, val_idx = next(folds.split(indices, labels, groups))
    except ValueError as exc:
        grouped = " patient-grouped" if groups is not None else ""
        raise MammoError(
            f"cannot split {len(labels)} training samples into a stratified{grouped} "
            f"{val_fraction:.0%} validation set ({exc})"
        ) from exc
    return np.sort(train_idx), np.sort(val_idx)
