"""The one check of a composed config, run before any data is read or TensorFlow imported.

The scikit-learn habit: inputs are validated once, at the boundary, with messages that say
what was expected and what was found; everything after trusts them. :func:`validate`
checks what the schema declares for every key (no unknown keys, numeric ranges, finite
floats; Enum choices are already checked by OmegaConf while composing), then the rules of
the command that join several keys or name paths on disk. One module, because every rule
should be found in one place (one check function per command, :data:`COMMAND_RULES`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mammo_cli.config.schema import (
    BACKBONE_STAGES,
    COMMAND_SCHEMAS,
    MODEL_SCHEMAS,
    BaselineModel,
    ClassWeighting,
    Mode,
    SiameseModelConfig,
)
from mammo_cli.errors import MammoError

#: course labels a task may map (0 baseline, 1-2 mass, 3-4 calcification)
COURSE_LABELS = range(5)


def validate(cfg: DictConfig, command: str) -> None:
    """Refuse ``cfg`` of ``mammo <command>`` with a MammoError naming the first problem."""
    check_keys_and_ranges(cfg, COMMAND_SCHEMAS[command])
    rule = COMMAND_RULES.get(command)
    if rule is not None:
        rule(cfg)


# -- what the schema declares -----------------------------------------------------------
def check_keys_and_ranges(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    """Every key of ``cfg`` is a field of ``schema`` (recursively), every mandatory value
    is given and every number lies in its declared range; ``hydra`` is Hydra's own."""
    fields = {field.name: field for field in dataclasses.fields(schema)}
    for key in cfg:
        if key not in fields and not (key == "hydra" and not prefix):
            raise MammoError(unknown_key_message(f"{prefix}{key}", fields))
    for name, field in fields.items():
        path = f"{prefix}{name}"
        if OmegaConf.is_missing(cfg, name):
            raise MammoError(f"missing {path}=... (no value given and no default)")
        value = cfg[name]
        if isinstance(value, DictConfig):
            nested = _schema_of(value, field.type)
            if nested is not None:
                check_keys_and_ranges(value, nested, f"{path}.")
        elif isinstance(value, ListConfig):
            for item in value:
                _check_number(path, item, field.metadata, element=True)
        else:
            _check_number(path, value, field.metadata)


def _schema_of(node: DictConfig, annotation: Any) -> type | None:
    """The dataclass a config node was composed on (models by their ``_target_``)."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        return schema  # type: ignore[return-value]
    target = node.get("_target_")
    return MODEL_SCHEMAS.get(target) if isinstance(target, str) else None


#: range keys of :func:`~mammo_cli.config.schema.number` -> (test, sign in messages)
_BOUNDS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "ge": (operator.ge, ">="),
    "gt": (operator.gt, ">"),
    "le": (operator.le, "<="),
    "lt": (operator.lt, "<"),
}


def _check_number(path: str, value: Any, bounds: dict[str, float], element: bool = False) -> None:
    """A number must be finite and inside the field's declared bounds."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    shown = f"{path} holds {value}" if element else f"{path}={value}"
    if isinstance(value, float) and not math.isfinite(value):
        raise MammoError(f"{shown}; expected a finite number")
    if all(test(value, bounds[key]) for key, (test, _) in _BOUNDS.items() if key in bounds):
        return
    kind = "an integer" if isinstance(value, int) else "a number"
    limits = " and ".join(
        f"{sign} {bounds[key]:g}" for key, (_, sign) in _BOUNDS.items() if key in bounds
    )
    raise MammoError(f"{shown}; expected {kind} {limits}")


def unknown_key_message(path: str, fields: Iterable[str]) -> str:
    """ "trainer.epoch is not a setting ... (did you mean trainer.epochs?)"."""
    head, _, key = path.rpartition(".")
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f" (did you mean {head + '.' if head else ''}{close[0]}?)" if close else ""
    return f"{path} is not a setting of this command{hint}; --help lists every key"


def fields_at(command: str, path: str) -> list[str]:
    """The field names the schema of ``command`` has under the dotted ``path``
    (``model``: the fields of every model schema)."""
    schemas: list[type] = [COMMAND_SCHEMAS[command]] if command in COMMAND_SCHEMAS else []
    for depth, part in enumerate(path.split(".") if path else []):
        nested: list[type] = []
        for schema in schemas:
            field = next((f for f in dataclasses.fields(schema) if f.name == part), None)
            if field is None:
                continue
            if depth == 0 and part == "model":
                nested += list(MODEL_SCHEMAS.values())
            elif dataclasses.is_dataclass(field.default_factory):
                nested.append(field.default_factory)  # type: ignore[arg-type]
        schemas = nested
    return sorted({f.name for schema in schemas for f in dataclasses.fields(schema)})


# -- rules of each command --------------------------------------------------------------
def check_task(task: DictConfig) -> None:
    """Classes map course labels 0..4 to at least two classes, each label at most once;
    a positive class only for binary tasks."""
    classes = {str(name): list(labels) for name, labels in task.classes.items()}
    if len(classes) < 2:
        raise MammoError(f"task.classes has {len(classes)} class; a task needs at least two")
    seen: dict[int, str] = {}
    for name, labels in classes.items():
        if not labels:
            raise MammoError(f"task.classes.{name} maps no course label")
        for label in labels:
            if label not in COURSE_LABELS:
                raise MammoError(f"task.classes.{name} has label {label}; course labels are 0..4")
            if label in seen:
                raise MammoError(
                    f"course label {label} is in task.classes.{seen[label]} and .{name}"
                )
            seen[label] = name
    positive = task.positive_class
    if positive is not None and (len(classes) != 2 or positive not in (0, 1)):
        raise MammoError(
            f"task.positive_class={positive}; expected 0 or 1 for a binary task, null otherwise"
        )


def check_model_fits_task(model: DictConfig, task: DictConfig) -> None:
    """The siamese model and the pairs task go together."""
    siamese = OmegaConf.get_type(model) is SiameseModelConfig or str(
        model.get("_target_", "")
    ).endswith("build_siamese")
    if task.pairs and not siamese:
        raise MammoError(f"task {task.name} feeds (abnormality, baseline) pairs; use model=siamese")
    if siamese and not task.pairs:
        raise MammoError("model=siamese takes (abnormality, baseline) pairs; use task=siamese")


def check_backbone(model: DictConfig) -> None:
    """A fine-tuned backbone names one of its stages; a weights path exists."""
    backbone = model.get("backbone")
    if backbone is None:
        return
    stages = BACKBONE_STAGES[str(backbone)]
    if model.mode == Mode.ft and model.unfreeze_from not in stages:
        raise MammoError(
            f"model.unfreeze_from={model.unfreeze_from}; expected one of {', '.join(stages)} "
            f"for {backbone}"
        )
    weights = model.weights
    if weights not in (None, "imagenet") and not Path(str(weights)).expanduser().is_file():
        raise MammoError(
            f"model.weights={weights}: no such file (expected imagenet, null or the path of a "
            f"{backbone} weights file)"
        )


def check_augmentation(augmentation: DictConfig) -> None:
    """Offline copies need a transform to make them with."""
    ranges = (
        augmentation.rotation_degrees,
        augmentation.width_shift,
        augmentation.height_shift,
        augmentation.zoom,
        augmentation.shear_degrees,
    )
    transforms = any(ranges) or augmentation.rotate_90 or augmentation.horizontal_flip
    if augmentation.offline_copies and not transforms:
        raise MammoError(
            f"augmentation.offline_copies={augmentation.offline_copies} but augmentation "
            f"{augmentation.name} has no transform (set rotation_degrees, shifts, zoom, "
            "shear or flips)"
        )


def check_class_weights(cfg: DictConfig) -> None:
    """Manual class weights: one positive weight per class of the task."""
    weights = cfg.class_weights
    if weights.kind != ClassWeighting.manual:
        return
    n_classes = len(cfg.task.classes)
    values = list(weights.weights or [])
    if len(values) != n_classes or any(w <= 0 for w in values):
        raise MammoError(
            f"class_weights.weights={values}; expected {n_classes} positive weights, one per "
            f"class ({', '.join(cfg.task.classes)}), e.g. class_weights.weights=[1.0,1.25]"
        )


def check_folder(value: str | None, key: str, required: bool = True) -> None:
    """``key`` names an existing folder (or is unset, unless ``required``)."""
    if value is None:
        if required:
            raise MammoError(f"missing {key}=<folder>")
        return
    folder = Path(str(value)).expanduser()
    if not folder.is_dir():
        what = "it is a file" if folder.exists() else "no such path"
        raise MammoError(f"{key}={value} is not a folder ({what})")


def check_logger(cfg: DictConfig) -> None:
    """``logger=mlflow`` needs MLflow installed."""
    if str(cfg.logger.name) == "mlflow":
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise MammoError(
                "logger=mlflow needs MLflow: pip install 'mammo-cli[mlflow]'"
            ) from None


def check_binary_settings(evaluate: DictConfig, task: DictConfig) -> None:
    """A target sensitivity needs a binary task."""
    if evaluate.target_sensitivity is not None and len(task.classes) != 2:
        raise MammoError(
            "evaluate.target_sensitivity applies to binary tasks only; task "
            f"{task.name} has {len(task.classes)} classes"
        )


def check_limit(data: DictConfig, task: DictConfig) -> None:
    """``data.limit`` leaves room for one sample of every class of the task."""
    if data.limit is not None and data.limit < len(task.classes):
        raise MammoError(
            f"data.limit={data.limit}; task {task.name} has {len(task.classes)} classes, "
            f"so at least {len(task.classes)} samples per split are needed"
        )


def check_training(cfg: DictConfig) -> None:
    """``mammo train`` / ``holdout`` / ``data describe``: task, model, weights, paths."""
    check_task(cfg.task)
    check_limit(cfg.data, cfg.task)
    check_model_fits_task(cfg.model, cfg.task)
    check_backbone(cfg.model)
    check_class_weights(cfg)
    check_augmentation(cfg.augmentation)
    check_folder(cfg.data.dir, "data.dir", required=False)
    check_logger(cfg)
    check_binary_settings(cfg.evaluate, cfg.task)


def check_baseline(cfg: DictConfig) -> None:
    """``mammo baseline``: a classifier to fit, then the checks of ``mammo train`` (the
    same overrides give the same task view and split)."""
    if cfg.baseline.model == BaselineModel.none:
        choices = ", ".join(m.value for m in BaselineModel if m != BaselineModel.none)
        raise MammoError(f"baseline.model=none fits nothing; mammo baseline needs one of {choices}")
    check_training(cfg)


def check_describe(cfg: DictConfig) -> None:
    """``mammo data describe``: the training checks; nothing to resume."""
    if cfg.resume is not None:
        raise MammoError(
            "resume= belongs to mammo train/holdout; data describe has nothing to resume"
        )
    check_training(cfg)


def check_roi(roi: ListConfig | None) -> None:
    """``roi=[x0,y0,x1,y1]`` with x0 < x1 and y0 < y1, in pixels."""
    if roi is None:
        return
    values = list(roi)
    if len(values) != 4 or min(values) < 0 or values[0] >= values[2] or values[1] >= values[3]:
        raise MammoError(f"roi={values}; expected [x0,y0,x1,y1] with 0 <= x0 < x1 and 0 <= y0 < y1")


def check_input(value: str | None) -> None:
    """``input=`` names an existing file or folder."""
    if value is not None and not Path(str(value)).expanduser().exists():
        raise MammoError(f"input={value} does not exist")


def check_evaluate(cfg: DictConfig) -> None:
    """``mammo evaluate``: a finished model run; a target sensitivity for binary tasks."""
    from mammo_cli.runs.folder import open_run

    run = open_run(cfg.run)
    check_folder(cfg.data.dir, "data.dir", required=False)
    check_limit(cfg.data, run.task)
    check_binary_settings(cfg.evaluate, run.task)


def check_predict(cfg: DictConfig) -> None:
    """``mammo predict``: a finished model run, an existing input, a usable threshold."""
    from mammo_cli.runs.folder import open_run

    run = open_run(cfg.run)
    check_input(cfg.input)
    check_roi(cfg.roi)
    if len(run.task.classes) != 2 and cfg.predict.threshold != 0.5:
        raise MammoError(
            f"predict.threshold={cfg.predict.threshold} applies to binary tasks only; this "
            "run's task has more than two classes (the arg-max class is predicted)"
        )


def check_explain(cfg: DictConfig) -> None:
    """``mammo explain``: a finished training run (one model), an existing input."""
    from mammo_cli.runs.folder import open_run

    run = open_run(cfg.run)
    if run.command == "ensemble":
        raise MammoError(
            f"run={cfg.run} is an ensemble; explain one of its member runs "
            "(Grad-CAM needs one model)"
        )
    check_input(cfg.input)
    check_roi(cfg.roi)


def check_ensemble(cfg: DictConfig) -> None:
    """``mammo ensemble``: at least two finished training runs of one classification,
    one non-negative weight per member."""
    from mammo_cli.runs.ensemble import check_members

    runs = check_members(list(cfg.members), cfg.ensemble.weights, cfg.data)
    check_folder(cfg.data.dir, "data.dir", required=False)
    check_limit(cfg.data, runs[0].task)


def check_prepare(cfg: DictConfig) -> None:
    """``mammo prepare``: the DICOM tree and the CSV folder exist; out is not a file."""
    check_folder(cfg.source, "source")
    check_folder(cfg.csv_dir, "csv_dir")
    if Path(str(cfg.out)).expanduser().is_file():
        raise MammoError(f"out={cfg.out} is a file; expected a folder to write the course files to")


def check_compare(cfg: DictConfig) -> None:
    """``mammo compare``: two finished scored runs of one classification, on the same test
    samples."""
    from mammo_cli.runs.compare import different_test_data, same_samples
    from mammo_cli.runs.ensemble import classification
    from mammo_cli.runs.folder import open_run

    a, b = (open_run(cfg[key], argument=key, model=False) for key in ("a", "b"))
    if classification(a.task) != classification(b.task):
        raise MammoError(
            f"a={cfg.a} and b={cfg.b} answer different classifications "
            f"({' vs '.join(a.task.classes)}; {' vs '.join(b.task.classes)})"
        )
    reason = different_test_data(a, b) or same_samples(a.test_predictions(), b.test_predictions())
    if reason is not None:
        raise MammoError(f"a={cfg.a} and b={cfg.b} were not scored on the same test set: {reason}")


COMMAND_RULES: dict[str, Callable[[DictConfig], None]] = {
    "train": check_training,
    "holdout": check_training,
    "baseline": check_baseline,
    "describe": check_describe,
    "evaluate": check_evaluate,
    "predict": check_predict,
    "explain": check_explain,
    "ensemble": check_ensemble,
    "prepare": check_prepare,
    "compare": check_compare,
}
