"""Building a Keras model from its config: each model config names its builder with
``_target_``. Importing this module registers mammo's custom layers for loading."""

from __future__ import annotations

from typing import Any

import keras
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from mammo_cli.errors import MammoError
from mammo_cli.models import layers  # noqa: F401  (registers custom layers for loading)


def build_model(model_cfg: Any, n_classes: int) -> keras.Model:
    """Build the ``keras.Model`` described by ``model_cfg`` for ``n_classes`` outputs."""
    try:
        return instantiate(model_cfg, n_classes=n_classes, _convert_="all")
    except InstantiationException as exc:
        if isinstance(exc.__cause__, MammoError):
            raise exc.__cause__ from None
        raise
