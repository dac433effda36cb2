"""The seeded, stratified train/validation split (15 % by default)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from mammo_cli.errors import MammoError


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train indices, validation indices), stratified by ``labels``, repeatable."""
    if not 0.0 < val_fraction < 1.0:
        raise MammoError(f"trainer.val_split={val_fraction}; expected a fraction in (0, 1)")
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
        )
    except ValueError as exc:
        raise MammoError(
            f"cannot split {len(labels)} training patches into a stratified "
            f"{val_fraction:.0%} validation set ({exc})"
        ) from exc
    return np.sort(train_idx), np.sort(val_idx)
