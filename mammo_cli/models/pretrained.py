"""ImageNet backbones with the study's head (SPEC 2, study sections 6.1-6.2).

Every saved mammo model takes the same input, (N, 150, 150, 1) float32 in [0, 1]; the
adapter to the backbone lives inside the model as serializable layers:

    patch (150,150,1) -> to_rgb (3 channels) -> to_255 (x 255) -> preprocess (the
    backbone's own preprocess_input: "caffe", RGB->BGR minus the ImageNet mean)
    -> <backbone> (one nested model, e.g. "vgg16") -> flatten -> hidden (Dense 256, relu)
    -> [dropout] -> output (Dense n_classes, float32)

``mode="fe"`` freezes the whole base; ``mode="ft"`` unfreezes the backbone from the stage
``unfreeze_from`` on (VGG: block1..block5; ResNet50: conv1..conv5, its stages; ResNet50's
BatchNormalization layers stay frozen so they keep their ImageNet statistics).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from mammo_cli.errors import MammoError
from mammo_cli.models.heads import classifier_output
from mammo_cli.models.layers import CaffePreprocess
from mammo_cli.models.scratch import check_output_activation

INPUT_SHAPE = (150, 150, 1)
MODES = ("fe", "ft")
#: seconds a weights download may stall before mammo gives up (offline machines).
DOWNLOAD_TIMEOUT_S = 10.0
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclass(frozen=True)
class Backbone:
    """A Keras application and the facts mammo needs about it."""

    application: Callable[..., keras.Model]
    #: the no-top ImageNet weights file Keras downloads into <keras home>/models/
    weights_file: str
    weights_url: str
    weights_md5: str
    #: names of the stages ``unfreeze_from`` accepts (layer-name prefixes, in order)
    stages: tuple[str, ...]


BACKBONES: dict[str, Backbone] = {
    "vgg16": Backbone(
        keras.applications.VGG16,
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
        ("block1", "block2", "block3", "block4", "block5"),
    ),
    "vgg19": Backbone(
        keras.applications.VGG19,
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
        ("block1", "block2", "block3", "block4", "block5"),
    ),
    "resnet50": Backbone(
        keras.applications.ResNet50,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_WEIGHTS_URL}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
        ("conv1", "conv2", "conv3", "conv4", "conv5"),
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
            spec.weights_file, spec.weights_url, cache_subdir="models", file_hash=spec.weights_md5
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


def _set_trainable(base: keras.Model, mode: str, unfreeze_from: str) -> None:
    """Freeze the whole base (fe) or everything before the stage ``unfreeze_from`` (ft)."""
    if mode == "fe":
        base.trainable = False
        return
    unfrozen = False
    for layer in base.layers:
        unfrozen = unfrozen or layer.name.startswith(f"{unfreeze_from}_")
        layer.trainable = unfrozen and not isinstance(layer, layers.BatchNormalization)


def check_head(hidden_units: int, dropout: float, output_activation: str) -> None:
    """Refuse head settings no model can be built with."""
    check_output_activation(output_activation)
    if hidden_units < 1:
        raise MammoError(f"model.hidden_units={hidden_units}; expected a positive integer")
    if not 0.0 <= dropout < 1.0:
        raise MammoError(f"model.dropout={dropout}; expected a rate in [0, 1)")


def build_base(backbone: str, mode: str, unfreeze_from: str, weights: str | None) -> keras.Model:
    """The ImageNet ``backbone`` without top on 150x150x3, frozen as ``mode`` says.

    Weights are resolved first, so a missing ImageNet download fails before anything is
    built.
    """
    if backbone not in BACKBONES:
        raise MammoError(f"model.backbone={backbone}; expected one of {', '.join(BACKBONES)}")
    if mode not in MODES:
        raise MammoError(f"model.mode={mode}; expected fe (feature extraction) or ft (fine tuning)")
    stages = BACKBONES[backbone].stages
    if mode == "ft" and unfreeze_from not in stages:
        raise MammoError(
            f"model.unfreeze_from={unfreeze_from}; expected one of {', '.join(stages)} "
            f"for {backbone}"
        )
    weights_file = resolve_weights(backbone, weights)
    try:
        base = BACKBONES[backbone].application(
            include_top=False, weights=weights_file, input_shape=(*INPUT_SHAPE[:2], 3)
        )
    except Exception as exc:  # a file that is not (or not this backbone's) weights
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MammoError(
            f"model.weights={weights}: cannot load it into {backbone} ({reason})"
        ) from None
    _set_trainable(base, mode, unfreeze_from)
    return base


def adapt_input(patch: keras.KerasTensor) -> keras.KerasTensor:
    """Patches (150,150,1) in [0, 1] -> the backbone's input: 3 channels, 0..255, caffe."""
    x = layers.Concatenate(name="to_rgb")([patch, patch, patch])
    x = layers.Rescaling(255.0, name="to_255")(x)
    return CaffePreprocess(name="preprocess")(x)


def build_pretrained(
    n_classes: int,
    backbone: str = "vgg16",
    mode: str = "fe",
    unfreeze_from: str = "block5",
    weights: str | None = "imagenet",
    hidden_units: int = 256,
    dropout: float = 0.0,
    output_activation: str = "softmax",
) -> keras.Model:
    """Adapter + ImageNet ``backbone`` without top + Flatten + Dense(hidden) + [Dropout] + Dense.

    With 2 classes and 256 hidden units: VGG16 16,812,610 parameters (2,097,922
    trainable in fe mode), VGG19 22,122,306. Weights are resolved first, so a missing
    ImageNet download fails before anything is built.
    """
    check_head(hidden_units, dropout, output_activation)
    base = build_base(backbone, mode, unfreeze_from, weights)
    inputs = keras.Input(shape=INPUT_SHAPE, name="patch")
    x = base(adapt_input(inputs))
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    outputs = classifier_output(x, n_classes, dropout, output_activation)
    return keras.Model(inputs, outputs, name=f"{backbone}_{mode}")
