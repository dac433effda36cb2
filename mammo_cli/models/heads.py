"""The classification output every mammo model ends with."""

from __future__ import annotations

import keras
from keras import layers


def classifier_output(
    x: keras.KerasTensor, n_classes: int, dropout: float, output_activation: str
) -> keras.KerasTensor:
    """[Dropout(dropout)] then Dense(n_classes, output_activation), named ``dropout``/``output``.

    The output layer computes in float32 under every precision policy, so mixed precision
    never rounds the probabilities.
    """
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    output = layers.Dense(n_classes, activation=output_activation, dtype="float32", name="output")
    return output(x)
