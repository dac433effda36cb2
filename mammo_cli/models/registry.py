"""Building a Keras model from its config: each model config names its builder with
``_target_``."""

from __future__ import annotations

from typing import Any

import keras
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mammo_cli.errors import MammoError


def build_model(model_cfg: Any, n_classes: int) -> keras.Model:
    """Build the ``keras.Model`` described by ``model_cfg`` for ``n_classes`` outputs
    (the config's choices reach Keras as plain strings)."""
    plain = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True, enum_to_str=True))
    try:
        return instantiate(plain, n_classes=n_classes, _convert_="all")
    except InstantiationException as exc:
        if isinstance(exc.__cause__, MammoError):
            raise exc.__cause__ from None
        raise
