"""Grad-CAM (Selvaraju et al., 2017) over the last convolution of a saved mammo model.

The heatmap of class c is ReLU(sum_k w_k A_k), where A_k are the feature maps of the
model's last Conv2D layer and w_k the spatial mean of d p_c / d A_k (p_c: the class's
output probability), upsampled (bilinear) to the 150x150 patch and scaled to [0, 1].

The last Conv2D is found in the model itself (scratch CNNs: ``conv5``/``conv6``) or in
its nested backbone (pretrained models: ``vgg16``/``vgg19``/``resnet50``, a sub-model
between the input adapter and the ``flatten`` head). For siamese models the last Conv2D
of the shared ``tower`` is explained once per application of the tower: the gradients of
the class probability w.r.t. the abnormality's and the baseline's feature maps give one
heatmap per input. Ensembles are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from mammo_cli.data.course import IMAGE_SIZE
from mammo_cli.data.tasks import ModelInput
from mammo_cli.errors import MammoError
from mammo_cli.models.siamese import DIFFERENCE_LAYER, TOWER_LAYER


@dataclass(frozen=True)
class GradCam:
    """A model cut at its last convolution: each input -> [pre] -> inner -> [post] -> [head]
    -> probabilities (one branch per model input; siamese: the tower on each patch)."""

    #: the name of the convolution explained, e.g. ``conv5`` or ``vgg16/block5_conv3``
    layer: str
    #: the model's input -> the nested backbone's input (None: the conv is not nested)
    pre: keras.Model | None
    #: -> (the conv's feature maps, the backbone's output or the model's probabilities)
    inner: keras.Model
    #: the backbone's output -> the model's probabilities, or the tower's embedding when
    #: ``head`` is set (None: the conv is not nested)
    post: keras.Model | None
    #: the branches' embeddings, in the model's input order -> probabilities (None: one
    #: input, whose branch ends in the probabilities)
    head: keras.Model | None = None

    def heatmaps(
        self, inputs: ModelInput, classes: np.ndarray | None = None
    ) -> tuple[np.ndarray | tuple[np.ndarray, ...], np.ndarray]:
        """Heatmaps (N, 150, 150) in [0, 1] for ``classes`` (default: the predicted ones),
        and the model's probabilities (N, n_classes). ``inputs`` is laid out as the model
        takes it: patches, or for siamese models the (abnormality, baseline) tuple, which
        gives a tuple of heatmaps, one per input."""
        parts = inputs if isinstance(inputs, tuple) else (inputs,)
        xs = [tf.convert_to_tensor(part, dtype=tf.float32) for part in parts]
        with tf.GradientTape() as tape:
            convs, outs = [], []
            for x in xs:
                tape.watch(x)  # frozen (non-trainable) backbones are recorded too
                conv, out = self.inner(x if self.pre is None else self.pre(x))
                convs.append(conv)
                outs.append(out if self.post is None else self.post(out))
            probs = outs[0] if self.head is None else self.head(outs)
            chosen = tf.argmax(probs, axis=1) if classes is None else tf.constant(classes)
            score = tf.reduce_sum(probs * tf.one_hot(chosen, probs.shape[-1], dtype=probs.dtype))
        grads = tape.gradient(score, convs)
        cams = tuple(_cam(conv, grad) for conv, grad in zip(convs, grads, strict=True))
        return (cams if isinstance(inputs, tuple) else cams[0]), probs.numpy().astype(np.float64)


def _cam(conv: tf.Tensor, grads: tf.Tensor) -> np.ndarray:
    """ReLU of the gradient-weighted feature maps, upsampled to the patch, peak scaled to 1."""
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(conv * weights, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")[..., 0]
    cam = cam.numpy().astype(np.float32)
    peak = cam.reshape(len(cam), -1).max(axis=1)
    cam /= np.where(peak > 0, peak, 1.0)[:, None, None]
    return cam


def _last_conv(layers: list[keras.layers.Layer]) -> keras.layers.Layer | None:
    return next(
        (layer for layer in reversed(layers) if isinstance(layer, keras.layers.Conv2D)), None
    )


def build_gradcam(model: keras.Model) -> GradCam:
    """Locate the last Conv2D of a mammo model (possibly in its backbone, or in the
    shared tower of a siamese model)."""
    if len(model.inputs) != 1:
        return _siamese_gradcam(model)
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


def _siamese_gradcam(model: keras.Model) -> GradCam:
    """The shared tower's Grad-CAM, with a head from the towers' embeddings to the output."""
    names = {layer.name for layer in model.layers}
    if not {TOWER_LAYER, DIFFERENCE_LAYER} <= names:
        raise MammoError(
            f"model {model.name} takes {len(model.inputs)} inputs but is not a mammo siamese "
            f"model (no {TOWER_LAYER!r} and {DIFFERENCE_LAYER!r} layers); cannot explain it"
        )
    tower = model.get_layer(TOWER_LAYER)
    embeddings = model.get_layer(DIFFERENCE_LAYER).input  # [tower(abnormality), tower(baseline)]
    if not isinstance(tower, keras.Model) or len(embeddings) != len(model.inputs):
        raise MammoError(f"model {model.name}: expected one shared tower per input for Grad-CAM")
    branch = build_gradcam(tower)
    head = keras.Model(list(embeddings), model.outputs[0])
    return replace(branch, layer=f"{tower.name}/{branch.layer}", head=head)
