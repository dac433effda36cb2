"""mammo: train and evaluate CNNs on mammogram abnormality patches.

The ``mammo`` command (:mod:`mammo_cli.cli`), and the same commands as Python functions
(:mod:`mammo_cli.api`): ``mammo_cli.train``, ``holdout``, ``evaluate``, ``baseline``,
``ensemble``, ``compare`` and ``load_run``; a user mistake raises :class:`MammoError`.
The API module is imported on first use, so ``import mammo_cli`` stays light (no Hydra,
no TensorFlow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mammo_cli.errors import MammoError, PartialFailure

if TYPE_CHECKING:
    from mammo_cli.api import (
        Holdout,
        Run,
        baseline,
        compare,
        ensemble,
        evaluate,
        holdout,
        load_run,
        train,
    )

__all__ = [
    "Holdout",
    "MammoError",
    "PartialFailure",
    "Run",
    "baseline",
    "compare",
    "ensemble",
    "evaluate",
    "holdout",
    "load_run",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mammo_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'mammo_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
