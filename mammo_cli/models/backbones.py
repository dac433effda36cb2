"""The ImageNet backbones (Keras applications without top) and their input adapter.

Every mammo model takes (N, 150, 150, 1) patches in [0, 1]. The adapter to a backbone
lives inside the model, in Keras built-in layers only (saved models load without mammo):

    patch -> to_rgb (Concatenate: 3 equal channels) -> to_255 (Rescaling x 255)
    -> preprocess (Normalization: (x - mean) / sqrt(variance) per channel) -> <backbone>

``preprocess`` is what the backbone's own ``preprocess_input`` does on the 0..255 scale:

- "caffe" (VGG16, VGG19, ResNet50): RGB -> BGR, minus the ImageNet mean in BGR order.
  On three equal channels the flip is the identity, so it is ``x - mean_bgr`` per channel.
- "torch" (DenseNet121): ``(x / 255 - mean_rgb) / std_rgb`` per channel.
- EfficientNetV2B0 and ConvNeXtTiny carry that step as layers of their own
  (``include_preprocessing=True``, torch-style statistics; their ``preprocess_input`` is a
  pass-through). mammo builds them with ``include_preprocessing=False`` and applies the
  same statistics in its adapter, so every backbone has the same adapter and its first
  layer is its stem; the normalisation is applied exactly once.

Freezing (``mode``): ``fe`` freezes the whole base; ``ft`` unfreezes from the first layer
of the stage ``unfreeze_from`` to the end. BatchNormalization layers stay frozen in both
modes (a frozen BatchNormalization runs in inference mode, keeping its ImageNet
statistics: Keras' transfer-learning recipe). A frozen layer behaves as at inference in
general: EfficientNetV2's stochastic-depth Dropout layers in frozen blocks get rate 0
(Keras' Dropout would otherwise drop even in a frozen block, and frozen features would
differ between training steps and the feature cache). ConvNeXt's LayerNormalization has
no running statistics (it normalises each sample) and trains with its stage like any
other layer.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
from keras import layers

from mammo_cli.data.course import PATCH_SHAPE
from mammo_cli.errors import MammoError

#: seconds a weights download may stall before mammo gives up (offline machines).
DOWNLOAD_TIMEOUT_S = 10.0
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications"

#: ImageNet channel means in BGR order, as Keras' "caffe" preprocess_input subtracts them.
CAFFE_MEAN = (103.939, 116.779, 123.68)
#: ImageNet mean and standard deviation (RGB, 0..1 scale) of the "torch" preprocessing.
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """A backbone's input normalisation on the 0..255 scale: (x - mean) / sqrt(variance)."""

    mean: tuple[float, ...]
    variance: tuple[float, ...]


CAFFE = Preprocessing(CAFFE_MEAN, (1.0, 1.0, 1.0))
TORCH = Preprocessing(
    tuple(255.0 * m for m in TORCH_MEAN_RGB),
    tuple((255.0 * s) ** 2 for s in TORCH_STD_RGB),
)


@dataclass(frozen=True)
class Backbone:
    """A Keras application and the facts mammo needs about it."""

    application: Callable[..., keras.Model]
    preprocessing: Preprocessing
    #: the no-top ImageNet weights file Keras downloads into <keras home>/models/
    weights_file: str
    weights_url: str
    #: its md5 or sha256, as Keras' application checks it
    weights_hash: str
    #: ``unfreeze_from`` choices, in network order -> the name prefix of the stage's
    #: first layer (everything from that layer on is unfrozen in ft mode)
    stages: dict[str, str]
    #: extra keyword arguments of the application
    options: dict[str, Any] = field(default_factory=dict)


def _stages(names: list[str], prefix: str = "", suffix: str = "_") -> dict[str, str]:
    return {name: f"{prefix}{name}{suffix}" for name in names}


BACKBONES: dict[str, Backbone] = {
    "vgg16": Backbone(
        keras.applications.VGG16,
        CAFFE,
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
        _stages([f"block{i}" for i in range(1, 6)]),
    ),
    "vgg19": Backbone(
        keras.applications.VGG19,
        CAFFE,
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
        _stages([f"block{i}" for i in range(1, 6)]),
    ),
    "resnet50": Backbone(
        keras.applications.ResNet50,
        CAFFE,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
        _stages([f"conv{i}" for i in range(1, 6)]),
    ),
    # dense blocks conv2..conv5; pool2..pool4 are the transition layers between them
    "densenet121": Backbone(
        keras.applications.DenseNet121,
        TORCH,
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "30ee3e1110167f948a6b9946edeeb738",
        _stages(["conv1", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "conv5"]),
    ),
    # the stem, blocks 1..6 (block<i>a, block<i>b, ...) and the final 1x1 top_conv
    "efficientnetv2b0": Backbone(
        keras.applications.EfficientNetV2B0,
        TORCH,
        "efficientnetv2-b0_notop.h5",
        f"{_WEIGHTS_URL}/efficientnet_v2/efficientnetv2-b0_notop.h5",
        "893217f2bb855e2983157299931e43ff",
        {
            "stem": "stem_",
            **_stages([f"block{i}" for i in range(1, 7)], suffix="a_"),
            "top": "top_",
        },
        {"include_preprocessing": False},
    ),
    # stage_i starts with its downsampling block (stage_0 with the stem's)
    "convnext_tiny": Backbone(
        keras.applications.ConvNeXtTiny,
        TORCH,
        "convnext_tiny_notop.h5",
        f"{_WEIGHTS_URL}/convnext/convnext_tiny_notop.h5",
        "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
        {
            "stage_0": "convnext_tiny_stem",
            **{f"stage_{i}": f"convnext_tiny_downsampling_block_{i - 1}" for i in (1, 2, 3)},
        },
        {"include_preprocessing": False},
    ),
}


def keras_cache_dir() -> Path:
    """The folder Keras caches downloaded weights in: $KERAS_HOME/models or ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def resolve_weights(backbone: str, weights: str | None) -> str | None:
    """The local weights file for ``backbone`` (downloading ImageNet weights if needed), or None.

    ``weights`` is ``"imagenet"`` (Keras' cache, else its download, given at most
    ``DOWNLOAD_TIMEOUT_S`` seconds per stalled read), ``None`` (random initialisation)
    or the path of a weights file for the backbone.
    """
    spec = BACKBONES[backbone]
    if weights is None:
        return None
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MammoError(
                f"model.weights={weights}: no such file (expected imagenet, null or the path "
                f"of {backbone} weights such as {spec.weights_file})"
            )
        return str(path)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return keras.utils.get_file(
            spec.weights_file, spec.weights_url, cache_subdir="models", file_hash=spec.weights_hash
        )
    except Exception as exc:  # Keras wraps URLError/timeouts; also HTTP errors, bad hash
        cause = exc.__context__ if isinstance(exc.__context__, OSError) else exc
        reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise MammoError(
            f"cannot download the {backbone} ImageNet weights ({reason}): place "
            f"{spec.weights_file} (from {spec.weights_url}) in {keras_cache_dir()}/, "
            "or use model.weights=<path to that file> or model.weights=null "
            "(random initialisation)"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _set_trainable(base: keras.Model, first_unfrozen: str | None) -> None:
    """Freeze the layers before the one named ``first_unfrozen*`` (all of them for None).

    BatchNormalization layers stay frozen (inference mode); Dropout layers of frozen
    blocks are switched off (rate 0), as they are at inference.
    """
    unfrozen = False
    for layer in base.layers:
        unfrozen = unfrozen or (
            first_unfrozen is not None and layer.name.startswith(first_unfrozen)
        )
        layer.trainable = unfrozen and not isinstance(layer, layers.BatchNormalization)
        if not unfrozen and isinstance(layer, layers.Dropout):
            layer.rate = 0.0
    if first_unfrozen is None:
        base.trainable = False


def build_base(backbone: str, mode: str, unfreeze_from: str, weights: str | None) -> keras.Model:
    """The ImageNet ``backbone`` without top on 150x150x3, named ``backbone``, frozen as
    ``mode`` says.

    Weights are resolved first, so a missing ImageNet download fails before anything is
    built.
    """
    spec = BACKBONES[backbone]
    weights_file = resolve_weights(backbone, weights)
    try:
        # Keras warns once per layer of a mismatched weights file before it fails: the
        # warnings are kept back and shown only if the weights load after all.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base = spec.application(
                include_top=False,
                weights=weights_file,
                input_shape=(*PATCH_SHAPE[:2], 3),
                **spec.options,
            )
        for warning in caught:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    except Exception as exc:  # a file that is not (or not this backbone's) weights
        if weights_file is None:
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MammoError(
            f"model.weights={weights}: cannot load it into {backbone} ({reason})"
        ) from None
    base.name = backbone  # Keras names EfficientNetV2B0 "efficientnetv2-b0"
    _set_trainable(base, spec.stages[unfreeze_from] if mode == "ft" else None)
    return base


def adapt_input(patch: keras.KerasTensor, backbone: str) -> keras.KerasTensor:
    """Patches (150,150,1) in [0, 1] -> ``backbone``'s input: 3 equal channels on the 0..255
    scale, normalised as its ``preprocess_input`` (and built-in preprocessing) would."""
    preprocessing = BACKBONES[backbone].preprocessing
    x = layers.Concatenate(name="to_rgb")([patch, patch, patch])
    x = layers.Rescaling(255.0, name="to_255")(x)
    return layers.Normalization(
        mean=list(preprocessing.mean), variance=list(preprocessing.variance), name="preprocess"
    )(x)
