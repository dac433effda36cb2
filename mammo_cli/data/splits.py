"""The seeded, stratified train/validation split (15 % by default), grouped by patient
when the data records patients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from mammo_cli.errors import MammoError

#: shuffles of the patients tried before a grouped split is refused
GROUPED_SHUFFLES = 10
#: what a user can do when no patient-grouped split keeps every class on both sides
_GROUPED_HINT = "set data.patient_groups=false to split by sample"


def stratified_split(
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
    groups: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train indices, validation indices), stratified by ``labels``, repeatable.

    With ``groups`` (a patient number per sample) no group is split between the two
    parts, and both hold every class, or a MammoError says why none can (how: see
    :func:`_grouped_split`). ``class_names`` name the classes in messages.
    """
    if groups is not None:
        return _grouped_split(labels, val_fraction, seed, groups, class_names)
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
        )
    except ValueError as exc:
        raise MammoError(
            f"cannot split {len(labels)} training samples into a stratified "
            f"{val_fraction:.0%} validation set ({exc})"
        ) from exc
    return np.sort(train_idx), np.sort(val_idx)


def _grouped_split(
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
    groups: np.ndarray,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A patient-grouped split whose training and validation parts both hold every class.

    The validation part is a fold of a shuffled ``StratifiedGroupKFold`` with
    ``round(1 / val_fraction)`` folds, so its share is close to ``val_fraction``: the
    first fold of the shuffle seeded with ``seed`` that leaves no class out of either
    part, trying that shuffle's folds in order, then up to :data:`GROUPED_SHUFFLES`
    shuffles seeded from ``seed`` (so the result is repeatable). A MammoError says
    which class cannot be on both sides when no fold can (e.g. it has one patient).
    """
    classes = np.unique(labels)

    def name(label: int) -> str:
        return repr(class_names[label]) if class_names is not None else str(label)

    description = (
        f"cannot split {len(labels)} training samples into a patient-grouped "
        f"{val_fraction:.0%} validation set"
    )
    for label in classes:
        patients = np.unique(groups[labels == label])
        if len(patients) < 2:
            raise MammoError(
                f"{description}: every sample of class {name(label)} belongs to patient "
                f"{patients[0]}, so that class cannot be in both the training and the "
                f"validation part; {_GROUPED_HINT}"
            )
    indices = np.arange(len(labels))
    n_splits = max(2, round(1 / val_fraction))
    for state in _shuffle_seeds(seed):
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=state)
        try:
            for train_idx, val_idx in folds.split(indices, labels, groups):
                if all(np.isin(classes, labels[part]).all() for part in (train_idx, val_idx)):
                    return np.sort(train_idx), np.sort(val_idx)
        except ValueError as exc:  # e.g. fewer patients than folds
            raise MammoError(f"{description} ({exc})") from exc
    raise MammoError(
        f"{description} that holds every class: {GROUPED_SHUFFLES} shuffles of the "
        f"{len(np.unique(groups))} patients into {n_splits} folds each left a class out of "
        f"one part; {_GROUPED_HINT}, or try another trainer.val_split"
    )


def _shuffle_seeds(seed: int) -> list[int]:
    """``seed`` itself (the first shuffle tried), then seeds derived from it."""
    derived = np.random.SeedSequence(seed).generate_state(GROUPED_SHUFFLES - 1)
    return [seed, *(int(state) for state in derived)]
