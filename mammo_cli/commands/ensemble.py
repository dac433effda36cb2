"""``mammo ensemble members=[<run dir>,...]``: average saved runs of one classification
into an ordinary run folder (:mod:`mammo_cli.runs.ensemble`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mammo_cli.files import write_text
from mammo_cli.runs.ensemble import check_members
from mammo_cli.runs.folder import CONFIG_FILE, MEMBERS_FILE, read_json
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Build and score the ensemble into ``run_dir``; return its metrics.json.

    The saved config records the members' common task and data, which is what every
    command given ``run=<ensemble folder>`` reads back.
    """
    runs = check_members(list(cfg.members), cfg.ensemble.weights, cfg.data)
    cfg.task = runs[0].task
    if cfg.data.dir is None:
        cfg.data = runs[0].config().data
    write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    import_tensorflow_quietly()
    from mammo_cli.runs.ensemble import build_and_score

    return build_and_score(cfg, runs, run_dir)


def show(cfg: DictConfig, metrics: dict[str, Any], run_dir: Path) -> None:
    """Print the members-vs-ensemble table and the run folder."""
    from mammo_cli.evaluation.reports import print_table
    from mammo_cli.runs.ensemble import ensemble_report

    members = read_json(run_dir / MEMBERS_FILE)
    print_table(ensemble_report(members["members"], metrics, members["provenance_differences"]))
    print(f"run folder: {run_dir}")


def objective(metrics: dict[str, Any]) -> float:
    """The ensemble's test AUC."""
    return float(metrics["auc"] or 0.0)
