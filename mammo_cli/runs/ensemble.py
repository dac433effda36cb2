"""Averaging ensembles of saved runs (study section 8): members, building, scoring.

An ensemble folder is an ordinary run folder: ``model.keras`` (one Keras model whose
output is the weighted average of the members' class probabilities,
:mod:`mammo_cli.models.ensemble`), ``config.yaml`` (the members, weights, and the task and
data they share, which every ``run=`` command reads), ``metrics.json``,
``test_predictions.csv`` and the plots, plus ``members.json`` (each member scored on the
same test set) and ``ensemble.md`` (the study's tables 11-12).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from mammo_cli.errors import MammoError
from mammo_cli.evaluation.metrics import to_distribution
from mammo_cli.evaluation.reports import TextTable, ensemble_table
from mammo_cli.evaluation.statistics import paired_difference
from mammo_cli.runs.compare import provenance_notes
from mammo_cli.runs.folder import MEMBERS_FILE, RunFolder, open_run

TABLE_FILE = "ensemble.md"
#: the ensemble's output is a distribution, scored like a softmax output
ENSEMBLE_ACTIVATION = "softmax"


def classification(task: DictConfig) -> tuple[Any, ...]:
    """What makes two tasks the same classification whatever their names (2.1 and 3.1):
    the classes with their course labels, the positive class, pairs or not."""
    classes = OmegaConf.to_container(task.classes)
    return classes, task.positive_class, bool(task.pairs)


def check_members(
    members: Sequence[str], weights: Sequence[float] | None, data: DictConfig
) -> list[RunFolder]:
    """The member runs: at least two finished training runs of one single-patch
    classification, one non-negative weight each (positive sum), one data source unless
    ``data.dir`` picks the test set. TensorFlow-free (run while validating the config)."""
    if len(members) < 2:
        raise MammoError(f"members={list(members)}; an ensemble needs at least two run folders")
    runs = []
    for member in members:
        run = RunFolder(Path(member).expanduser())
        if run.command == "ensemble":
            raise MammoError(f"members: {member} is an ensemble; members are mammo train runs")
        runs.append(open_run(member, argument="members"))
    tasks = [run.task for run in runs]
    for run, task in zip(runs, tasks, strict=True):
        if task.pairs:
            raise MammoError(
                f"members: {run.path} was trained for the pairs task {task.name}; an "
                "ensemble averages single-patch models"
            )
        if classification(task) != classification(tasks[0]):
            raise MammoError(
                f"the members answer different classifications: {runs[0].path} "
                f"({' vs '.join(tasks[0].classes)}) and {run.path} ({' vs '.join(task.classes)})"
            )
    if weights is not None:
        if len(weights) != len(members):
            raise MammoError(
                f"ensemble.weights has {len(weights)} values for {len(members)} members; "
                "give one weight per member"
            )
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise MammoError(
                f"ensemble.weights={list(weights)}; expected non-negative weights with a "
                "positive sum"
            )
    if data.dir is None:
        sources = [OmegaConf.to_container(run.config().data) for run in runs]
        if any(source != sources[0] for source in sources[1:]):
            raise MammoError(
                "the members were trained on different data; set data.dir=<course folder> "
                "to pick the test set"
            )
    return runs


def build_and_score(cfg: DictConfig, runs: list[RunFolder], run_dir: Path) -> dict[str, Any]:
    """Build the ensemble of ``runs`` as ``cfg`` says, score it and every member on one
    test set, and write the ensemble's run folder. Returns its ``metrics.json``."""
    from mammo_cli.data.dataset import load_task_data
    from mammo_cli.files import write_json, write_text
    from mammo_cli.models.ensemble import Member, build_ensemble, normalised_weights
    from mammo_cli.runs.pipeline import save_model
    from mammo_cli.runs.predict import load_checked_model, predict_outputs
    from mammo_cli.runs.report_page import write_html
    from mammo_cli.runs.scoring import score, task_positive, write_results

    started = time.perf_counter()
    weights = normalised_weights(cfg.ensemble.weights, len(runs))
    task_data = load_task_data(cfg.data, cfg.task, with_train=False)
    test = task_data.test
    names = test.class_names
    positive = task_positive(cfg.task)
    members = []
    for run in runs:
        model = load_checked_model(run)
        members.append(Member(model, run.output_activation, str(run.path)))
    ensemble, probe = build_ensemble(members, weights)
    *member_probs, probs = predict_outputs(probe, test.stored_input(), cfg.batch_size)
    rows = [
        {
            "name": member.model.name,
            "run_dir": str(run.path.resolve()),
            "task": run.task.name,
            "weight": weight,
            "output_activation": member.output_activation,
            **score(test.labels, member_output, names, positive, member.output_activation),
            "epochs_run": run.metrics().get("epochs_run"),
            "seed": run.config().seed,
        }
        for run, member, member_output, weight in zip(
            runs, members, member_probs, weights, strict=True
        )
    ]
    save_model(ensemble, run_dir / "model.keras")
    best = max(range(len(rows)), key=lambda i: rows[i]["auc"] if rows[i]["auc"] is not None else -1)
    result = {
        "task": cfg.task.name,
        "class_names": names,
        "counts": {"test": test.counts()},
        **score(test.labels, probs, names, positive, ENSEMBLE_ACTIVATION),
        "weights": weights,
        "averaging": "each member's probabilities normalised to sum 1, then weighted mean",
        "members": [row["run_dir"] for row in rows],
        "vs_best_member": {
            "member": rows[best]["name"],
            **versus_member(test, member_probs[best], probs, positive, cfg),
        },
        "epochs_run": None,
        "seed": cfg.seed,
        "data_dir": str(task_data.folder),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    differ = provenance_notes({row["name"]: run for row, run in zip(rows, runs, strict=True)})
    write_json(run_dir / MEMBERS_FILE, {"members": rows, "provenance_differences": differ})
    table = ensemble_report(rows, result, differ)
    write_text(run_dir / TABLE_FILE, table.to_markdown())
    title = f"ensemble, task {cfg.task.name}: test set"
    metrics = write_results(run_dir, result, test, probs, title, positive, cfg.evaluate)
    members = {row["name"]: run for row, run in zip(rows, runs, strict=True)}
    write_html(run_dir, table.title, [table], {"ensemble": RunFolder(run_dir), **members})
    return metrics


def versus_member(
    test: Any, member: np.ndarray, ensemble: np.ndarray, positive: int | None, cfg: DictConfig
) -> dict[str, Any]:
    """The paired AUC difference ensemble - member on the test set (DeLong for binary
    tasks, else a paired bootstrap over the test units)."""
    units, unit = test.bootstrap_units()
    bootstrap = cfg.evaluate.bootstrap
    return paired_difference(
        test.labels,
        to_distribution(member),
        to_distribution(ensemble),
        "auc",
        positive,
        units=None if unit == "sample" else units,
        resamples=bootstrap.resamples,
        seed=cfg.seed,
        level=bootstrap.level,
    )


def ensemble_report(
    members: list[dict[str, Any]], result: dict[str, Any], differ: list[str] = ()
) -> TextTable:
    """Study tables 11-12: the members, then the ensemble, the ensemble against its best
    member, and what differs in the members' provenance (``differ``)."""
    rows = [*members, {"name": "ensemble", **result}]
    notes = [
        f"{m['name']} (weight {m['weight']:.3g}, {m['output_activation']}): {m['run_dir']}"
        for m in members
    ]
    versus = result.get("vs_best_member")
    if versus and versus["difference"] is not None:
        p_value = "n/a" if versus["p_value"] is None else f"{versus['p_value']:.2g}"
        notes.append(
            f"ensemble - {versus['member']} (the best member): AUC {versus['difference']:+.3f}, "
            f"{versus['method']} p = {p_value}"
        )
    notes += [f"provenance: {note}" for note in differ]
    return ensemble_table(rows, f"mammo ensemble: task {result['task']} (test set)", notes)
