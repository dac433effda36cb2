"""Saved models load anywhere: a fresh Python process that cannot import mammo loads every
kind of model.keras mammo writes in Keras' safe mode and predicts the same probabilities."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np

from mammo_cli.models.ensemble import Member, build_ensemble
from mammo_cli.models.pretrained import build_pretrained
from mammo_cli.models.scratch import build_scratch
from mammo_cli.models.siamese import build_siamese

#: loads every <name>.keras of the folder and saves its predictions as <name>.npy;
#: ``import mammo_cli`` fails in it (a saved model needing mammo's code cannot load)
LOADER = textwrap.dedent(
    """
    import sys
    sys.modules["mammo_cli"] = None
    from pathlib import Path
    import keras, numpy as np

    inputs = np.load("inputs.npz")
    for path in sorted(Path(".").glob("*.keras")):
        model = keras.models.load_model(path, safe_mode=True)
        x = (inputs["a"], inputs["b"]) if len(model.inputs) == 2 else inputs["a"]
        np.save(path.with_suffix(".npy"), np.asarray(model(x)))
    """
)


def saved_models() -> dict[str, keras.Model]:
    """One model of each kind mammo saves (random weights), by file name."""
    keras.utils.set_random_seed(0)
    ensemble, _ = build_ensemble(
        [
            Member(build_scratch(2), "softmax", "softmax run"),
            Member(build_scratch(2, output_activation="sigmoid"), "sigmoid", "sigmoid run"),
        ],
        [2.0, 1.0],
    )
    fine_tuned = {"mode": "ft", "unfreeze_from": "block6", "dropout": 0.5}
    return {
        "scratch": build_scratch(2, extra_conv=True, dropout=0.2),
        "vgg16": build_pretrained(2, backbone="vgg16", weights=None, output_activation="sigmoid"),
        "resnet50": build_pretrained(2, backbone="resnet50", weights=None, pooling="avg"),
        "densenet121": build_pretrained(3, backbone="densenet121", weights=None, pooling="avg"),
        "efficientnetv2b0": build_pretrained(
            2, backbone="efficientnetv2b0", weights=None, pooling="avg", **fine_tuned
        ),
        "convnext_tiny": build_pretrained(2, backbone="convnext_tiny", weights=None, pooling="avg"),
        "siamese": build_siamese(2, weights=None, pooling="avg"),
        "ensemble": ensemble,
    }


def test_every_kind_of_saved_model_loads_and_predicts_without_mammo(tmp_path: Path):
    rng = np.random.default_rng(0)
    a, b = (rng.random((2, 150, 150, 1), dtype=np.float32) for _ in range(2))
    np.savez(tmp_path / "inputs.npz", a=a, b=b)
    expected = {}
    for name, model in saved_models().items():
        model.save(tmp_path / f"{name}.keras")
        x = (a, b) if len(model.inputs) == 2 else a
        expected[name] = np.asarray(model(x))
    home = tmp_path / "home"  # Keras creates ~/.keras there
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", LOADER], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, probabilities in expected.items():
        loaded = np.load(tmp_path / f"{name}.npy")
        np.testing.assert_allclose(loaded, probabilities, rtol=1e-6, atol=1e-6, err_msg=name)
