"""The study's CNNs trained from scratch (figures 2 and 10)."""

from __future__ import annotations

import keras
from keras import layers

from mammo_cli.data.course import PATCH_SHAPE
from mammo_cli.models.heads import classifier_output


def build_scratch(
    n_classes: int,
    hidden_units: int = 64,
    dropout: float = 0.0,
    extra_conv: bool = False,
    output_activation: str = "softmax",
    input_shape: tuple[int, int, int] = PATCH_SHAPE,
) -> keras.Model:
    """Conv32-Pool-Conv32-Pool-Conv64-Pool-Conv64-Pool-Conv128[-Conv128]-Flatten-Dense-Dense.

    All convolutions are 3x3 'valid' with ReLU, pools 2x2. With 2 classes and 64 hidden
    units this is 343,842 parameters (``extra_conv=False``, study figure 2) or 360,354
    (``extra_conv=True``, figure 10). ``dropout`` > 0 adds Dropout before the output.
    """
    inputs = keras.Input(shape=input_shape, name="patch")
    x = inputs
    for index, filters in enumerate((32, 32, 64, 64), start=1):
        x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = layers.Conv2D(128, 3, activation="relu", name="conv5")(x)
    if extra_conv:
        x = layers.Conv2D(128, 3, activation="relu", name="conv6")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    outputs = classifier_output(x, n_classes, dropout, output_activation)
    name = "scratch_deep" if extra_conv else "scratch"
    return keras.Model(inputs, outputs, name=name)
