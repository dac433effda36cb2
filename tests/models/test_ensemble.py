"""The averaging ensemble as one Keras model: its arithmetic and its layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mammo_cli.errors import MammoError
from mammo_cli.models.ensemble import Member, build_ensemble
from mammo_cli.models.scratch import build_scratch


def members(n_classes: int = 3) -> list[Member]:
    """A softmax and a sigmoid scratch model (random weights, seeded)."""
    keras.utils.set_random_seed(0)
    return [
        Member(build_scratch(n_classes), "softmax", "softmax run"),
        Member(build_scratch(n_classes, output_activation="sigmoid"), "sigmoid", "sigmoid run"),
    ]


def test_weighted_average_of_distributions():
    pair = members()
    x = np.random.default_rng(0).random((4, 150, 150, 1), dtype=np.float32)
    softmax, sigmoid = (np.asarray(member.model(x), dtype=np.float64) for member in pair)
    ensemble, probe = build_ensemble(pair, [3.0, 1.0])
    expected = 0.75 * softmax + 0.25 * sigmoid / sigmoid.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(ensemble(x)), expected, rtol=1e-6, atol=1e-7)
    raw_softmax, raw_sigmoid, average = (np.asarray(out) for out in probe(x))
    np.testing.assert_allclose(raw_softmax, softmax, rtol=1e-6)
    np.testing.assert_allclose(raw_sigmoid, sigmoid, rtol=1e-6)
    np.testing.assert_allclose(average.sum(axis=1), 1.0, rtol=1e-6)
    names = {layer.name for layer in ensemble.layers}
    assert names == {
        "patch", "member_1_scratch", "member_2_scratch", "to_distribution_2",
        "weight_1", "weight_2", "average",
    }  # fmt: skip
    assert [member.model.name for member in pair] == ["member_1_scratch", "member_2_scratch"]
    assert ensemble.get_layer("weight_1").scale == pytest.approx(0.75)
    # only Keras' own layers: the saved ensemble loads without mammo
    assert {type(layer).__module__.split(".")[0] for layer in ensemble.layers} == {"keras"}


def test_equal_weights_by_default():
    pair = members(2)
    x = np.random.default_rng(1).random((2, 150, 150, 1), dtype=np.float32)
    softmax, sigmoid = (np.asarray(member.model(x), dtype=np.float64) for member in pair)
    ensemble, _ = build_ensemble(pair)
    expected = (softmax + sigmoid / sigmoid.sum(axis=1, keepdims=True)) / 2
    np.testing.assert_allclose(np.asarray(ensemble(x)), expected, rtol=1e-6, atol=1e-7)


def test_a_sigmoid_member_must_end_in_a_sigmoid_dense():
    softmax, _ = members(2)
    mislabelled = Member(build_scratch(2), "sigmoid", "run/x")
    with pytest.raises(MammoError, match="run/x was trained with a sigmoid output"):
        build_ensemble([softmax, mislabelled])
