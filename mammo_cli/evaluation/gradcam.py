"""Grad-CAM (Selvaraju et al., 2017) over the last convolution of a saved mammo model.

The heatmap of class c is ReLU(sum_k w_k A_k), where A_k are the feature maps of the
model's last Conv2D layer and w_k the spatial mean of d p_c / d A_k (p_c: the class's
output probability), upsampled (bilinear) to the 150x150 patch and scaled to [0, 1].

The last Conv2D is found in the model itself (scratch CNNs: ``conv5``/``conv6``) or in
its nested backbone (pretrained models: ``vgg16``/``vgg19``/``resnet50``, a sub-model
between the input adapter and the ``flatten`` head). Siamese models (two towers) and
ensembles are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mammo_cli.data.course import IMAGE_SIZE
from mammo_cli.errors import MammoError


@dataclass(frozen=True)
class GradCam:
    """A model cut at its last convolution: input -> [pre] -> inner -> [post] -> probabilities."""

    #: the name of the convolution explained, e.g. ``conv5`` or ``vgg16/block5_conv3``
    layer: str
    #: the model's input -> the nested backbone's input (None: the conv is not nested)
    pre: keras.Model | None
    #: -> (the conv's feature maps, the backbone's output or the model's probabilities)
    inner: keras.Model
    #: the backbone's output -> the model's probabilities (None: the conv is not nested)
    post: keras.Model | None

    def heatmaps(
        self, patches: np.ndarray, classes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps (N, 150, 150) in [0, 1] for ``classes`` (default: the predicted ones),
        and the model's probabilities (N, n_classes)."""
        x = tf.convert_to_tensor(patches, dtype=tf.float32)
        with tf.GradientTape() as tape:
            conv, out = self.inner(x if self.pre is None else self.pre(x))
            probs = out if self.post is None else self.post(out)
            chosen = tf.argmax(probs, axis=1) if classes is None else tf.constant(classes)
            score = tf.reduce_sum(probs * tf.one_hot(chosen, probs.shape[-1], dtype=probs.dtype))
        grads = tape.gradient(score, conv)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(conv * weights, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")[..., 0]
        cam = cam.numpy().astype(np.float32)
        peak = cam.reshape(len(cam), -1).max(axis=1)
        cam /= np.where(peak > 0, peak, 1.0)[:, None, None]
        return cam, probs.numpy().astype(np.float64)


def _last_conv(layers: list[keras.layers.Layer]) -> keras.layers.Layer | None:
    return next(
        (layer for layer in reversed(layers) if isinstance(layer, keras.layers.Conv2D)), None
    )


def build_gradcam(model: keras.Model) -> GradCam:
    """Locate the last Conv2D of a single-patch mammo model (possibly in its backbone)."""
    if len(model.inputs) != 1:
        raise MammoError(
            f"model {model.name} takes (abnormality, baseline) pairs; Grad-CAM of the "
            "siamese towers is not implemented (mammo explain supports scratch and "
            "vgg16/vgg19/resnet50 runs)"
        )
    patch = model.inputs[0]
    for index in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[index]
        if isinstance(layer, keras.layers.Conv2D):
            inner = keras.Model(patch, [layer.output, model.outputs[0]])
            return GradCam(layer.name, None, inner, None)
        if isinstance(layer, keras.Model) and (conv := _last_conv(layer.layers)) is not None:
            return _split_at_backbone(model, index, conv)
    raise MammoError(f"model {model.name} has no Conv2D layer to explain with Grad-CAM")


def _split_at_backbone(model: keras.Model, index: int, conv: keras.layers.Layer) -> GradCam:
    """pre/inner/post around the backbone at ``model.layers[index]`` (adapter -> base -> head)."""
    base = model.layers[index]
    if 0 < index < len(model.layers) - 1 and len(base.inputs) == 1:
        pre = keras.Model(model.inputs[0], model.layers[index - 1].output)
        post = keras.Model(model.layers[index + 1].input, model.outputs[0])
        if tuple(pre.output.shape[1:]) == tuple(base.inputs[0].shape[1:]) and tuple(
            post.inputs[0].shape[1:]
        ) == tuple(base.outputs[0].shape[1:]):
            inner = keras.Model(base.inputs[0], [conv.output, base.outputs[0]])
            return GradCam(f"{base.name}/{conv.name}", pre, inner, post)
    raise MammoError(
        f"model {model.name}: cannot cut the graph around its backbone {base.name} for "
        "Grad-CAM (expected input adapter -> backbone -> head in a chain)"
    )
