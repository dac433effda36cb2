"""The one way mammo turns patches into class probabilities.

Every command that predicts (train's validation and test sets, evaluate, ensemble,
predict, explain) goes through :func:`predict`: batches in the model's input layout fed
by tf.data (:func:`~mammo_cli.training.fit.prediction_dataset`), patches kept in their
stored dtype and scaled to [0, 1] in the graph, float patches passed through.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from mammo_cli.data.course import PATCH_SHAPE
from mammo_cli.data.tasks import ModelInput
from mammo_cli.errors import MammoError
from mammo_cli.runs.folder import MODEL_FILE, RunFolder
from mammo_cli.training.fit import prediction_dataset


def predict_outputs(
    model: keras.Model, inputs: ModelInput, batch_size: int, rows: np.ndarray | None = None
) -> list[np.ndarray]:
    """Every output of ``model`` on ``inputs`` (on ``inputs[rows]`` with ``rows``), in
    order, as float64 arrays (raw: a sigmoid output's rows need not sum to 1)."""
    outputs = model.predict(prediction_dataset(inputs, batch_size, rows), verbose=0)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return [np.asarray(output, dtype=np.float64) for output in outputs]


def predict(
    model: keras.Model, inputs: ModelInput, batch_size: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """The raw class probabilities of a single-output ``model`` (see :func:`predict_outputs`)."""
    return predict_outputs(model, inputs, batch_size, rows)[0]


def load_checked_model(run: RunFolder) -> keras.Model:
    """The model saved in ``run`` (safe mode), checked against the task the run answers."""
    model = run.load_model()
    task = run.task
    check_model(model, len(task.classes), bool(task.pairs), str(run.path))
    return model


def check_model(model: keras.Model, n_classes: int, pairs: bool, run_dir: str) -> None:
    """Refuse the model of the run folder ``run_dir`` when it cannot answer the task: its
    inputs (one patch, or an (abnormality, baseline) pair, each 150x150x1) or its outputs
    (one output of ``n_classes`` class scores)."""
    source = Path(run_dir) / MODEL_FILE
    expected = [PATCH_SHAPE] * (2 if pairs else 1)
    found = [tuple(x.shape[1:]) for x in model.inputs]
    if found != expected:
        raise MammoError(
            f"{source}: the model takes inputs {found}; expected {expected} "
            f"({'an (abnormality, baseline) pair' if pairs else 'one patch'} of 150x150x1)"
        )
    shapes = [tuple(output.shape[1:]) for output in model.outputs]
    if shapes != [(n_classes,)]:
        raise MammoError(
            f"{source}: the model gives {len(shapes)} output(s) of shape "
            f"{', '.join(map(str, shapes))}; expected one output of shape ({n_classes},) "
            f"(the task's {n_classes} classes)"
        )
