"""The Siamese network on (abnormality, baseline) pairs (study 7.1, figure 28).

One tower embeds both patches of a pair with the same weights:

    patch (150,150,1) in [0, 1] -> to_rgb -> to_255 -> preprocess (the adapter of
    :mod:`mammo_cli.models.backbones`) -> vgg16 -> flatten | pool -> hidden (Dense 256, relu)

and the model classifies the difference of the two embeddings:

    abnormality -> tower --.
                            difference (Subtract: abnormality - baseline) -> [dropout]
    baseline    -> tower --'                                        -> output (Dense)

The study used a Lambda layer for the difference; ``keras.layers.Subtract`` is the same
operation as a serializable built-in layer, so saved models load in Keras' safe mode.
With VGG16 the tower has 16,812,096 parameters and the model 16,812,610 with 2 classes
(2,097,922 trainable in fe mode), the same as ``model=vgg16``.
"""

from __future__ import annotations

import keras
from keras import layers

from mammo_cli.data.course import PATCH_SHAPE
from mammo_cli.models.backbones import adapt_input, build_base
from mammo_cli.models.heads import classifier_output
from mammo_cli.models.pretrained import pool_features

#: the input names, in the order the model takes them (``model.inputs``)
PAIR_INPUTS = ("abnormality", "baseline")
#: the name of the shared tower (a nested model ending in ``flatten`` | ``pool`` -> ``hidden``)
TOWER_LAYER = "tower"
#: the name of the layer taking the embeddings' difference
DIFFERENCE_LAYER = "difference"


def build_tower(
    backbone: str,
    mode: str,
    unfreeze_from: str,
    weights: str | None,
    hidden_units: int,
    pooling: str,
) -> keras.Model:
    """Adapter + ImageNet ``backbone`` without top + Flatten|GlobalAveragePooling2D +
    Dense(hidden_units, relu)."""
    base = build_base(backbone, mode, unfreeze_from, weights)
    patch = keras.Input(shape=PATCH_SHAPE, name="patch")
    x = pool_features(base(adapt_input(patch, backbone)), pooling)
    embedding = layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    return keras.Model(patch, embedding, name=TOWER_LAYER)


def build_siamese(
    n_classes: int,
    backbone: str = "vgg16",
    mode: str = "fe",
    unfreeze_from: str = "block5",
    weights: str | None = "imagenet",
    hidden_units: int = 256,
    dropout: float = 0.0,
    output_activation: str = "softmax",
    pooling: str = "flatten",
) -> keras.Model:
    """Shared tower on both patches of a pair, Subtract, [Dropout], Dense(n_classes).

    Inputs: ``abnormality`` and ``baseline``, each (150, 150, 1) float32 in [0, 1].
    ``backbone``, ``mode``, ``unfreeze_from``, ``weights`` and ``pooling`` mean what they
    mean for a pretrained model (:func:`mammo_cli.models.pretrained.build_pretrained`).
    """
    tower = build_tower(backbone, mode, unfreeze_from, weights, hidden_units, pooling)
    abnormality, baseline = (keras.Input(shape=PATCH_SHAPE, name=name) for name in PAIR_INPUTS)
    x = layers.Subtract(name=DIFFERENCE_LAYER)([tower(abnormality), tower(baseline)])
    outputs = classifier_output(x, n_classes, dropout, output_activation)
    return keras.Model([abnormality, baseline], outputs, name=f"siamese_{backbone}_{mode}")
