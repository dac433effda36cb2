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
