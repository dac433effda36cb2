"""``mammo ensemble members=[<run dir>,...]``: average saved runs of one task (study section 8).

The members' saved models are joined into one Keras model (:mod:`mammo_cli.models.ensemble`)
whose output is the (optionally weighted) average of their class probabilities. Members and
ensemble are scored on the same test set in one pass, with the same metrics code as
``mammo train``. The run folder gets ``ensemble.keras`` (``mammo evaluate run=<folder>``
re-evaluates it), ``confusion_matrix.png`` (the ensemble's), ``ensemble.md`` (study tables
11-12) and, written last, ``ensemble.json``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mammo_cli.commands import current_run_dir, in_run_folder
from mammo_cli.config import TrainConfig
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.reports import TextTable
from mammo_cli.tf_setup import import_tensorflow_quietly

TABLE_FILE = "ensemble.md"


@dataclass(frozen=True)
class MemberRun:
    """A member run folder and what it recorded."""

    run: Path
    #: its resolved training config
    cfg: TrainConfig
    #: its metrics.json ({} if absent)
    metrics: dict[str, Any]


def load_member_runs(members: list[str]) -> list[MemberRun]:
    """Read every member's config and metrics; refuse folders that cannot be members."""
    from mammo_cli.runs import is_ensemble_run, load_run_config, recorded_metrics

    if len(members) < 2:
        raise MammoError(f"members={list(members)}; an ensemble needs at least two run folders")
    runs = []
    for member in members:
        run = Path(member)
        if not run.is_dir():
            raise MammoError(f"members: {member} is not a folder (expected a mammo train run)")
        if is_ensemble_run(run):
            raise MammoError(f"members: {member} is an ensemble; members are mammo train runs")
        cfg = load_run_config(run)
        if cfg.task.pairs:
            raise MammoError(
                f"members: {member} was trained for the pairs task {cfg.task.name}; "
                "an ensemble averages single-patch models"
            )
        runs.append(MemberRun(run, cfg, recorded_metrics(run)))
    return runs


def _task_key(member: MemberRun) -> tuple[Any, Any]:
    return OmegaConf.to_container(member.cfg.task.classes), member.cfg.task.positive_class


def common_task(members: list[MemberRun]) -> DictConfig:
    """The task every member was trained for (same classes and positive class), else an error.

    Task names may differ (2.1 and 3.1 are both mass vs calcification); the ensemble's
    name joins them: ``2.1+3.1``.
    """
    first = members[0]
    for member in members[1:]:
        if _task_key(member) != _task_key(first):

            def describe(m: MemberRun) -> str:
                return f"{m.run} (task {m.cfg.task.name}: {', '.join(m.cfg.task.classes)})"

            raise MammoError(
                f"the members were trained for different tasks: {describe(first)} and "
                f"{describe(member)}; an ensemble averages members of one task"
            )
    names = list(dict.fromkeys(str(m.cfg.task.name) for m in members))
    task = copy.deepcopy(first.cfg.task)
    task.name = "+".join(names)
    return task


def common_data(members: list[MemberRun]) -> DictConfig:
    """The data every member was trained on, else an error asking for ``data.dir``."""
    configs = [OmegaConf.to_container(m.cfg.data) for m in members]
    if any(config != configs[0] for config in configs[1:]):
        raise MammoError(
            "the members were trained on different data; set data.dir=<course folder> "
            "to pick the test set"
        )
    return members[0].cfg.data


def evaluate_ensemble(
    cfg: DictConfig, members: list[MemberRun], weights: list[float], run_dir: Path
) -> dict[str, Any]:
    """Build, score and save the ensemble of ``members`` averaged with ``weights`` (sum 1).

    Returns the content of ``ensemble.json``.
    """
    from mammo_cli.data.dataset import load_task_data
    from mammo_cli.evaluation.plots import save_confusion_matrix
    from mammo_cli.files import write_json, write_text
    from mammo_cli.models.ensemble import Member, build_ensemble
    from mammo_cli.runs import (
        ENSEMBLE_FILE,
        ENSEMBLE_MODEL_FILE,
        METRIC_KEYS,
        MODEL_FILE,
        ensemble_eval_config,
        load_model,
        save_model,
        score_predictions,
    )

    started = time.perf_counter()
    eval_cfg = ensemble_eval_config(cfg.task, cfg.data)
    task_data = load_task_data(cfg.data, eval_cfg.task, with_train=False)
    test = task_data.test
    class_names = test.class_names
    loaded = [
        Member(load_model(m.run / MODEL_FILE), m.cfg.model.output_activation, str(m.run))
        for m in members
    ]
    ensemble, probe = build_ensemble(loaded, weights)
    if ensemble.output_shape[-1] != len(class_names):
        raise MammoError(
            f"the members have {ensemble.output_shape[-1]} outputs but task {cfg.task.name} "
            f"has {len(class_names)} classes"
        )
    outputs = probe.predict(test.model_input(), batch_size=cfg.batch_size, verbose=0)

    def row(name: str, run: Path, task: str, metrics: dict[str, Any], **facts: Any) -> dict:
        head = {"name": name, "run_dir": str(run.resolve()), "task": task}
        return {**head, "class_names": class_names, **{k: metrics[k] for k in METRIC_KEYS}, **facts}

    rows = [
        row(
            member.model.name,
            member_run.run,
            member_run.cfg.task.name,
            score_predictions(test.labels, probs, member_run.cfg, class_names),
            output_activation=member.output_activation,
            weight=weight,
            epochs_run=member_run.metrics.get("epochs_run"),
            seed=member_run.cfg.seed,
        )
        for member_run, member, probs, weight in zip(
            members, loaded, outputs[:-1], weights, strict=True
        )
    ]
    ensemble_row = row(
        "ensemble",
        run_dir,
        cfg.task.name,
        score_predictions(test.labels, outputs[-1], eval_cfg, class_names),
        epochs_run=None,
        seed=None,
    )
    save_model(ensemble, run_dir / ENSEMBLE_MODEL_FILE)
    save_confusion_matrix(
        ensemble_row["confusion_matrix"],
        class_names,
        run_dir / "confusion_matrix.png",
        title=f"ensemble, task {cfg.task.name}: test set",
    )
    result = {
        "task": cfg.task.name,
        "class_names": class_names,
        "counts": {"test": test.counts()},
        "weights": weights,
        "averaging": "each member's probabilities normalised to sum 1, then weighted mean",
        "members": rows,
        "ensemble": ensemble_row,
        "data_dir": str(task_data.folder),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    write_text(run_dir / TABLE_FILE, ensemble_report(result).to_markdown())
    write_json(run_dir / ENSEMBLE_FILE, result)
    return result


def ensemble_report(result: dict[str, Any]) -> TextTable:
    """Study tables 11-12 of an ``ensemble.json`` payload: members, then the ensemble."""
    from mammo_cli.evaluation.reports import ensemble_table

    rows = [*result["members"], result["ensemble"]]
    notes = [
        f"{m['name']} (weight {m['weight']:.3g}, {m['output_activation']}): {m['run_dir']}"
        for m in result["members"]
    ]
    title = f"mammo ensemble: task {result['task']} (test set)"
    return ensemble_table(rows, title, notes)


def run(cfg: DictConfig) -> float:
    """Hydra task function; returns the ensemble's test AUC.

    The members and weights are checked (one task, one data source) before anything is
    written; the config saved in the run folder records the members' common task and
    data, which is what ``mammo evaluate run=<ensemble folder>`` reads back.
    """
    import_tensorflow_quietly()
    from mammo_cli.evaluation.reports import print_table
    from mammo_cli.models.ensemble import ensemble_weights

    members = load_member_runs(list(cfg.members))
    weights = ensemble_weights(cfg.ensemble.weights, len(members))
    cfg.task = common_task(members)
    if cfg.data.dir is None:
        cfg.data = common_data(members)
    result = in_run_folder(cfg, lambda run_dir: evaluate_ensemble(cfg, members, weights, run_dir))
    print_table(ensemble_report(result))
    print(f"run folder: {current_run_dir()}")
    return float(result["ensemble"]["auc"])
