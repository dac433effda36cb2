"""ImageNet backbones with the study's head (study sections 6.1-6.2).

Every saved mammo model takes the same input, (N, 150, 150, 1) float32 in [0, 1]; the
adapter to the backbone lives inside the model as Keras built-in layers
(:mod:`mammo_cli.models.backbones`):

    patch (150,150,1) -> to_rgb -> to_255 -> preprocess -> <backbone> (one nested model,
    named as model.backbone, e.g. "vgg16") -> flatten | pool -> hidden (Dense 256, relu)
    -> [dropout] -> output (Dense n_classes, float32)

``pooling`` turns the backbone's feature map into the vector the head reads (and the
feature cache stores): ``flatten`` (layer ``flatten``, the study's choice for VGG16/VGG19
and ResNet50) or ``avg`` (layer ``pool``, GlobalAveragePooling2D). The configs of
DenseNet121, EfficientNetV2B0 and ConvNeXtTiny default to ``avg``: those networks were
designed and pretrained with global average pooling before their classifier, and at
150x150 their final maps (4x4x1024, 5x5x1280, 4x4x768) flattened would make Dense(256)
of 4.2M, 8.2M and 3.1M parameters, as large as the backbone itself, on a few thousand
patches.
"""

from __future__ import annotations

import keras
from keras import layers

from mammo_cli.data.course import PATCH_SHAPE
from mammo_cli.models.backbones import adapt_input, build_base
from mammo_cli.models.heads import classifier_output

#: model.pooling -> the name of the layer whose output is the feature vector
POOLING_LAYERS = {"flatten": "flatten", "avg": "pool"}


def pool_features(feature_map: keras.KerasTensor, pooling: str) -> keras.KerasTensor:
    """The backbone's feature map as a vector: Flatten (``flatten``) or global average
    pooling (``avg``, layer ``pool``)."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=POOLING_LAYERS[pooling])(feature_map)
    return layers.Flatten(name=POOLING_LAYERS[pooling])(feature_map)


def build_pretrained(
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
    """Adapter + ImageNet ``backbone`` without top + Flatten|GlobalAveragePooling2D +
    Dense(hidden) + [Dropout] + Dense(n_classes).

    With 2 classes and 256 hidden units (flatten): VGG16 16,812,610 parameters (2,097,922
    trainable in fe mode), VGG19 22,122,306. Weights are resolved first, so a missing
    ImageNet download fails before anything is built.
    """
    base = build_base(backbone, mode, unfreeze_from, weights)
    inputs = keras.Input(shape=PATCH_SHAPE, name="patch")
    x = pool_features(base(adapt_input(inputs, backbone)), pooling)
    x = layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    outputs = classifier_output(x, n_classes, dropout, output_activation)
    return keras.Model(inputs, outputs, name=f"{backbone}_{mode}")
