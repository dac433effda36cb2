"""The averaging ensemble of study section 8 (figures 33-34) as one Keras model.

Every saved mammo model takes the same input, a (150, 150, 1) patch in [0, 1], and
carries its own input adapter (pretrained members convert to 3 channels and apply their
backbone's preprocessing inside), so the ensemble has a single input:

    patch (150,150,1) -> member_1_<name> ... member_n_<name>   (the saved member models)
    -> [to_distribution_<i>]   (sigmoid members only: scores divided by their row sum)
    -> weight_<i> (Rescaling by the member's weight, the weights summing to 1)
    -> average (Add) -> (N, n_classes) probabilities

Each member's output is first made a probability distribution (a no-op for softmax; a
sigmoid member's per-class scores p are divided by their sum, the normalisation the
metrics already apply to it), then the distributions are averaged. The ensemble's
output is therefore a distribution as well, scored like a softmax output.

Only Keras built-in layers are used, so a saved ensemble loads with
``keras.models.load_model(path, safe_mode=True)`` without mammo. Keras has no layer
dividing by a row sum; the sigmoid member's normalisation uses softmax(log p) = p / sum(p):
the member is nested with a second output, its own output Dense (the same weights)
with the ``log_sigmoid`` activation, and ``to_distribution_<i>`` is a Softmax of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
from keras import layers

from mammo_cli.errors import MammoError

INPUT_SHAPE = (150, 150, 1)
#: the ensemble's output is a probability distribution: scored like a softmax output
#: (categorical cross-entropy).
ENSEMBLE_OUTPUT_ACTIVATION = "softmax"


@dataclass(frozen=True)
class Member:
    """A saved model taking part in an ensemble."""

    model: keras.Model
    #: the member run's ``model.output_activation`` (softmax | sigmoid)
    output_activation: str
    #: where it came from, for error messages
    source: str


def member_name(index: int, model: keras.Model) -> str:
    """The unique name of member ``index`` (1-based) inside the ensemble: member_1_scratch."""
    return f"member_{index}_{model.name}"


def normalised_weights(weights: Sequence[float] | None, n_members: int) -> list[float]:
    """The averaging weights normalised to sum 1; ``None`` gives equal weights."""
    if weights is None:
        return [1.0 / n_members] * n_members
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def build_ensemble(
    members: Sequence[Member], weights: Sequence[float] | None = None
) -> tuple[keras.Model, keras.Model]:
    """One single-input model averaging ``members``' class probabilities, weighted by
    ``weights`` (normalised to sum 1; None: equal weights).

    Returns ``(ensemble, probe)``: ``ensemble`` is the model to save (one output, the
    weighted average); ``probe`` shares its layers and outputs every member's raw
    probabilities followed by the ensemble's, so one pass over the test set scores all.
    The members are renamed ``member_<i>_<model name>`` in place.
    """
    normalised = normalised_weights(weights, len(members))
    n_outputs = {int(member.model.outputs[0].shape[-1]) for member in members}
    if len(n_outputs) != 1:
        raise MammoError(f"the members have different numbers of outputs ({sorted(n_outputs)})")
    patch = keras.Input(shape=INPUT_SHAPE, name="patch")
    raw, weighted = [], []
    for index, (member, weight) in enumerate(zip(members, normalised, strict=True), start=1):
        model = member.model
        if len(model.inputs) != 1 or tuple(model.inputs[0].shape[1:]) != INPUT_SHAPE:
            raise MammoError(
                f"member {member.source} takes inputs "
                f"{[tuple(x.shape[1:]) for x in model.inputs]}; an ensemble averages "
                f"single-patch models taking {INPUT_SHAPE}"
            )
        model.name = member_name(index, model)
        if member.output_activation == "sigmoid":
            probs, log_probs = with_log_probabilities(member)(patch)
            distribution = layers.Softmax(dtype="float32", name=f"to_distribution_{index}")(
                log_probs
            )
        else:
            probs = distribution = model(patch)
        raw.append(probs)
        scale = layers.Rescaling(weight, dtype="float32", name=f"weight_{index}")
        weighted.append(scale(distribution))
    average = layers.Add(dtype="float32", name="average")(weighted)
    ensemble = keras.Model(patch, average, name="ensemble")
    probe = keras.Model(patch, [*raw, average], name="ensemble_probe")
    return ensemble, probe


def with_log_probabilities(member: Member) -> keras.Model:
    """The sigmoid ``member`` with a second output, log p: its output Dense (same weights)
    with the ``log_sigmoid`` activation. Same name as the member; shares its layers."""
    model = member.model
    output = model.layers[-1]
    if not (isinstance(output, layers.Dense) and output.activation.__name__ == "sigmoid"):
        raise MammoError(
            f"member {member.source} was trained with a sigmoid output, but its last layer "
            f"({output.name}) is not a Dense layer with a sigmoid activation"
        )
    log_output = layers.Dense(
        output.units, activation="log_sigmoid", dtype="float32", name=f"{output.name}_log"
    )
    log_probs = log_output(output.input)
    log_output.set_weights(output.get_weights())
    return keras.Model(model.inputs, [model.outputs[0], log_probs], name=model.name)
