"""What a run does, shared by every command: train + evaluate, or evaluate a saved run.

A run folder holds ``config.yaml`` (resolved), ``model.keras``, ``history.csv``,
``curves.png``, ``confusion_matrix.png``, the command's log and, written last,
``metrics.json``. A failed run writes ``status.json`` with the error instead. An ensemble
folder (``mammo ensemble``) holds ``ensemble.keras`` and ``ensemble.json`` instead of the
model and metrics files; :func:`evaluate_saved_run` reads both kinds.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from omegaconf import OmegaConf

from mammo_cli.config import DataConfig, TrainConfig
from mammo_cli.data.dataset import TaskData, load_task_data
from mammo_cli.data.splits import stratified_split
from mammo_cli.data.tasks import ModelInput, Samples, take
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.metrics import classification_metrics, cross_entropy, operating_point
from mammo_cli.evaluation.plots import save_confusion_matrix, save_curves, save_roc_curve
from mammo_cli.evaluation.reports import SCORES
from mammo_cli.files import write_json, write_text, write_with
from mammo_cli.models import build_model
from mammo_cli.models.ensemble import ENSEMBLE_OUTPUT_ACTIVATION
from mammo_cli.tf_setup import distribution_strategy, set_thread_counts
from mammo_cli.training.augmentation import expand_offline
from mammo_cli.training.checkpoint import CHECKPOINT_DIR, remove_checkpoint
from mammo_cli.training.feature_cache import cacheable_split, fit_head_on_features
from mammo_cli.training.fit import (
    fit_model,
    host_tensors,
    prediction_dataset,
    seed_everything,
    set_precision,
)
from mammo_cli.training.loggers import build_logger_callbacks

MODEL_FILE = "model.keras"
#: what a ``mammo ensemble`` folder holds instead of model.keras and metrics.json
ENSEMBLE_MODEL_FILE = "ensemble.keras"
ENSEMBLE_FILE = "ensemble.json"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"


def _predict(
    model: keras.Model, images: ModelInput, batch_size: int, rows: np.ndarray | None = None
) -> np.ndarray:
    probs = model.predict(prediction_dataset(images, batch_size, rows), verbose=0)
    return np.asarray(probs, dtype=np.float64)


def evaluate_model(
    model: keras.Model,
    samples: Samples,
    cfg: TrainConfig,
    class_names: list[str],
    batch_size: int,
) -> dict[str, Any]:
    """Predict ``samples`` and compute the contract's metrics (loss included).

    Their input is the model's: patches (stored dtype or scaled), or the
    (abnormality, baseline) tuple.
    """
    probs = _predict(model, samples.inputs, batch_size, samples.rows)
    return score_predictions(samples.labels, probs, cfg, class_names)


def score_predictions(
    labels: np.ndarray, probs: np.ndarray, cfg: TrainConfig, class_names: list[str]
) -> dict[str, Any]:
    """The contract's metrics (loss included) of predicted class probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    metrics = classification_metrics(labels, probs, class_names, cfg.task.positive_class)
    metrics["loss"] = cross_entropy(labels, probs, cfg.model.output_activation)
    return metrics


def _history_csv(history: dict[str, list[float]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch, row in enumerate(zip(*(history[k] for k in keys), strict=True), start=1):
        writer.writerow([epoch, *row])
    return buffer.getvalue()


#: the contract's test metrics, in the order metrics.json lists them
METRIC_KEYS = (
    "accuracy",
    "loss",
    "auc",
    "f1",
    "f1_macro",
    "precision",
    "recall",
    "confusion_matrix",
)


def _ordered(metrics: dict[str, Any], head: dict[str, Any], tail: dict[str, Any]) -> dict[str, Any]:
    """The contract's key order: identity first, scores, then run facts."""
    return {**head, **{key: metrics[key] for key in METRIC_KEYS}, **tail}


def _write_results(run_dir: Path, result: dict[str, Any], title: str) -> dict[str, Any]:
    """The confusion-matrix PNG, then ``metrics.json`` last (its presence means success)."""
    save_confusion_matrix(
        result["confusion_matrix"], result["class_names"], run_dir / "confusion_matrix.png", title
    )
    write_json(run_dir / METRICS_FILE, result)
    return result


def save_model(model: keras.Model, path: Path) -> Path:
    """Save a Keras model whole (temp file + rename)."""
    return write_with(path, model.save)


def load_model(path: Path) -> keras.Model:
    """Load a saved model in Keras' safe mode; anything else is refused."""
    if not path.is_file():
        raise MammoError(f"no saved model at {path} (expected the {MODEL_FILE} of a finished run)")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a bad or unsafe archive
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MammoError(f"{path} is not a loadable Keras model in safe mode ({reason})") from exc


def check_model_fits_task(model: keras.Model, cfg: TrainConfig) -> None:
    """Refuse a two-input (pairs) model on a single-patch task, and the other way round."""
    expected = 2 if cfg.task.pairs else 1
    if len(model.inputs) != expected:
        if cfg.task.pairs:
            raise MammoError(
                f"task {cfg.task.name} feeds (abnormality, baseline) pairs, but model "
                f"{model.name} takes single patches; use model=siamese"
            )
        raise MammoError(
            f"model {model.name} takes (abnormality, baseline) pairs, but task "
            f"{cfg.task.name} feeds single patches; use task=siamese"
        )


def train_and_evaluate(
    cfg: TrainConfig,
    run_dir: Path,
    data: TaskData,
    split_seed: int | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train one model as ``cfg`` says on ``data``, evaluate it on the test set, fill ``run_dir``.

    ``split_seed`` picks the train/validation split (default: ``cfg.seed``); holdout
    validation passes a different one per repetition. Offline augmentation expands the
    training split only; a frozen base with static training data trains the head on
    features cached once (:mod:`mammo_cli.training.feature_cache`). The fit checkpoints
    every epoch into ``run_dir/checkpoint`` (removed once ``metrics.json`` is written);
    ``resume`` continues from the checkpoint there, if any (:mod:`mammo_cli.training.checkpoint`).
    """
    started = time.perf_counter()
    set_thread_counts(cfg.trainer.threads)  # before TensorFlow runs its first op
    seed_everything(cfg.seed)
    precision = set_precision(cfg.trainer.precision)
    class_names = data.test.class_names
    n_classes = len(class_names)
    strategy = distribution_strategy()  # several GPUs: one model replica on each
    with strategy.scope():
        # Built first: missing pretrained weights fail before any expensive work.
        model = build_model(cfg.model, n_classes)
    check_model_fits_task(model, cfg)
    train_idx, val_idx = stratified_split(
        data.train.labels,
        cfg.trainer.val_split,
        cfg.seed if split_seed is None else split_seed,
        groups=data.train.groups,
    )
    # stored dtype: each batch is scaled as it is fed (make_dataset); for pairs tasks
    # the (abnormality, baseline) tuple. Both splits pick their rows from the task
    # view's patches, which TensorFlow shares rather than copies (host_tensors).
    patches = host_tensors(data.train.stored_input())
    train_labels = data.train.labels
    val = Samples(patches, train_labels[val_idx], val_idx)
    if cfg.augmentation.offline_copies:
        train = Samples(
            *expand_offline(
                take(data.train.stored_input(), train_idx),
                train_labels[train_idx],
                cfg.augmentation,
                cfg.seed,
            )
        )
    else:
        train = Samples(patches, train_labels[train_idx], train_idx)
    split = cacheable_split(model, cfg)
    loggers = build_logger_callbacks(cfg, run_dir)
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    with strategy.scope():  # the optimizer's variables are mirrored too
        if split is None:
            fit = fit_model(model, train, val, cfg, n_classes, loggers, checkpoint_dir, resume)
        else:
            fit = fit_head_on_features(
                *split, train, val, cfg, n_classes, loggers, checkpoint_dir, resume
            )
    n_train_samples = len(train.labels)
    del train
    val_metrics = evaluate_model(model, val, cfg, class_names, cfg.trainer.batch_size)
    save_model(model, run_dir / MODEL_FILE)
    write_text(run_dir / "history.csv", _history_csv(fit.history))
    save_curves(fit.history, run_dir / "curves.png")

    metrics = evaluate_model(
        model,
        Samples(data.test.stored_input(), data.test.labels),
        cfg,
        class_names,
        cfg.trainer.batch_size,
    )

    def counts(labels: np.ndarray) -> dict[str, int]:
        per_class = np.bincount(labels, minlength=n_classes)
        return {name: int(n) for name, n in zip(class_names, per_class, strict=True)}

    result = _ordered(
        metrics,
        head={
            "task": cfg.task.name,
            "class_names": class_names,
            "counts": {
                "train": counts(train_labels[train_idx]),
                "val": counts(train_labels[val_idx]),
                "test": counts(data.test.labels),
            },
        },
        tail={
            "validation": {key: val_metrics[key] for key in SCORES},
            "epochs_run": fit.epochs_run,
            "best_epoch": fit.best_epoch,
            "train_samples": n_train_samples,
            "feature_cache": split is not None,
            "seconds_per_epoch": round(float(np.median(fit.epoch_seconds)), 3),
            "class_weight": (
                {class_names[i]: w for i, w in fit.class_weight.items()}
                if fit.class_weight
                else None
            ),
            "seed": cfg.seed,
            "split_seed": cfg.seed if split_seed is None else split_seed,
            "split_grouped_by_patient": data.train.groups is not None,
            "dtype_policy": precision,
            "n_params": int(model.count_params()),
            "data_dir": str(data.folder),
            "wall_time_s": round(time.perf_counter() - started, 2),
        },
    )
    _write_results(run_dir, result, title=f"task {cfg.task.name}: test set")
    remove_checkpoint(run_dir)
    return result


def is_ensemble_run(run: Path) -> bool:
    """Whether ``run`` is a ``mammo ensemble`` folder (it holds ensemble.keras)."""
    return (run / ENSEMBLE_MODEL_FILE).is_file()


def ensemble_eval_config(task: Any, data: Any) -> TrainConfig:
    """The config an ensemble is scored with: its members' task and data, softmax loss."""
    view = {"task": task, "data": data, "model": {"output_activation": ENSEMBLE_OUTPUT_ACTIVATION}}
    return OmegaConf.merge(OmegaConf.structured(TrainConfig), view)  # type: ignore[return-value]


def load_run_config(run: Path) -> TrainConfig:
    """The resolved training config saved in a run folder, checked against the schema.

    For an ensemble folder: :func:`ensemble_eval_config` of the task and data it recorded.
    """
    path = run / CONFIG_FILE
    if not path.is_file():
        raise MammoError(f"{run} is not a mammo run folder (no {CONFIG_FILE})")
    try:
        loaded = OmegaConf.load(path)
        if is_ensemble_run(run):
            return ensemble_eval_config(loaded.task, loaded.data)
        return OmegaConf.merge(OmegaConf.structured(TrainConfig), loaded)  # type: ignore[return-value]
    except Exception as exc:
        raise MammoError(f"{path} is not a valid mammo run config ({exc})") from exc


def recorded_metrics(run: Path) -> dict[str, Any]:
    """The test metrics ``run`` wrote: metrics.json, or an ensemble's own row; {} if none."""
    path = run / (ENSEMBLE_FILE if is_ensemble_run(run) else METRICS_FILE)
    if not path.is_file():
        return {}
    recorded = json.loads(path.read_text())
    return recorded["ensemble"] if is_ensemble_run(run) else recorded


def _roc_and_operating_point(
    labels: np.ndarray,
    probs: np.ndarray,
    cfg: TrainConfig,
    class_names: list[str],
    target_sensitivity: float | None,
    path: Path,
) -> dict[str, Any] | None:
    """For a binary task: write the ROC curve PNG; return the operating point if asked."""
    if target_sensitivity is not None and not 0.0 < target_sensitivity <= 1.0:
        raise MammoError(
            f"evaluate.target_sensitivity={target_sensitivity}; expected a rate in (0, 1]"
        )
    if len(class_names) != 2:
        if target_sensitivity is not None:
            raise MammoError(
                "evaluate.target_sensitivity applies to binary tasks only; task "
                f"{cfg.task.name} has {len(class_names)} classes"
            )
        return None
    if len(np.unique(labels)) < 2:  # no ROC curve without both classes
        if target_sensitivity is not None:
            raise MammoError("evaluate.target_sensitivity needs both classes in the test set")
        return None
    positive = 1 if cfg.task.positive_class is None else int(cfg.task.positive_class)
    scores = (probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None))[:, positive]
    point = (
        None
        if target_sensitivity is None
        else operating_point(labels, scores, positive, target_sensitivity)
    )
    title = f"task {cfg.task.name}: ROC ({class_names[positive]} positive)"
    save_roc_curve(
        (labels == positive).astype(int), scores, class_names[positive], path, title, point
    )
    return point


def evaluate_saved_run(
    run: Path,
    data: DataConfig,
    batch_size: int,
    run_dir: Path,
    target_sensitivity: float | None = None,
) -> dict[str, Any]:
    """Re-evaluate the model saved in ``run`` on a test set; write ``run_dir`` like a train run.

    Binary tasks also get ``roc_curve.png``; with ``target_sensitivity`` metrics.json
    records the ``operating_point`` (threshold, sensitivity, specificity) reaching it.
    """
    started = time.perf_counter()
    if not run.is_dir():
        raise MammoError(f"run={run} is not a folder (expected a mammo run folder)")
    cfg = load_run_config(run)
    model_path = run / (ENSEMBLE_MODEL_FILE if is_ensemble_run(run) else MODEL_FILE)
    model = load_model(model_path)
    check_model_fits_task(model, cfg)
    source_data = data if data.dir is not None else cfg.data
    task_data = load_task_data(source_data, cfg.task, with_train=False)
    class_names = task_data.test.class_names
    if model.output_shape[-1] != len(class_names):
        raise MammoError(
            f"{model_path} has {model.output_shape[-1]} outputs but task {cfg.task.name} "
            f"has {len(class_names)} classes"
        )
    labels = task_data.test.labels
    probs = _predict(model, task_data.test.stored_input(), batch_size)
    metrics = score_predictions(labels, probs, cfg, class_names)
    point = _roc_and_operating_point(
        labels, probs, cfg, class_names, target_sensitivity, run_dir / "roc_curve.png"
    )
    source_metrics = recorded_metrics(run)
    result = _ordered(
        metrics,
        head={
            "task": cfg.task.name,
            "class_names": class_names,
            "counts": {"test": task_data.test.counts()},
        },
        tail={
            "epochs_run": source_metrics.get("epochs_run"),
            "seed": source_metrics.get("seed", cfg.seed),
            "source_run": str(run.resolve()),
            "data_dir": str(task_data.folder),
            **({"operating_point": point} if point is not None else {}),
            "wall_time_s": round(time.perf_counter() - started, 2),
        },
    )
    return _write_results(
        run_dir, result, title=f"task {cfg.task.name}: {task_data.folder.name} test set"
    )
