"""Serializable custom layers of mammo models (no Lambda: saved models load in safe mode).

Importing this module registers the layers with Keras; ``mammo_cli.models`` imports it,
so any code that loads a saved mammo model finds them.
"""

from __future__ import annotations

import keras
from keras import ops

#: ImageNet channel means in BGR order, as Keras' "caffe" preprocessing subtracts them.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="mammo")
class CaffePreprocess(keras.layers.Layer):
    """RGB on the 0..255 scale -> BGR minus the ImageNet mean (VGG16/VGG19/ResNet50).

    Equals ``keras.applications.vgg16.preprocess_input`` (and resnet50's) on
    channels-last input.
    """

    def call(self, inputs):
        bgr = ops.flip(inputs, axis=-1)
        return bgr - ops.cast(ops.convert_to_tensor(IMAGENET_BGR_MEAN), bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mammo")
class ToDistribution(keras.layers.Layer):
    """Divide each row of class scores by its sum (sigmoid outputs -> a distribution).

    The same normalisation :func:`mammo_cli.evaluation.metrics.classification_metrics`
    applies before taking the arg-max, so a member's class decisions do not change.
    """

    def call(self, inputs):
        total = ops.sum(inputs, axis=-1, keepdims=True)
        return inputs / ops.maximum(total, ops.cast(1e-12, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mammo")
class WeightedAverage(keras.layers.Layer):
    """``sum_i w_i * inputs[i]`` with fixed weights (ensembles pass weights summing to 1).

    The weights are part of the layer's config (not trainable variables), so a saved
    ensemble reloads with them in Keras' safe mode.
    """

    def __init__(self, member_weights: list[float], **kwargs):
        super().__init__(**kwargs)
        self.member_weights = [float(w) for w in member_weights]

    def call(self, inputs):
        return sum(w * x for w, x in zip(self.member_weights, inputs, strict=True))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "member_weights": self.member_weights}
