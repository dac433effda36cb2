"""``mammo evaluate run=<run dir>``: re-evaluate a saved model into a new run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mammo_cli.files import write_text
from mammo_cli.runs.folder import CONFIG_FILE, open_run
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Score the run's model on the test set into ``run_dir``; return its metrics.json."""
    run = open_run(cfg.run)
    cfg.task = run.task
    write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    import_tensorflow_quietly()
    from mammo_cli.runs.pipeline import evaluate_saved_run

    return evaluate_saved_run(run, cfg.data, cfg.batch_size, cfg.evaluate, run_dir)


def show(cfg: DictConfig, metrics: dict[str, Any], run_dir: Path) -> None:
    """Print the test metrics and, if asked for, the operating point."""
    from mammo_cli.evaluation.reports import print_metrics

    print_metrics(metrics, title=f"mammo evaluate: {cfg.run}")
    if "operating_point" in metrics:
        point = metrics["operating_point"]
        print(
            f"operating point: threshold {point['threshold']:.4f} -> sensitivity "
            f"{point['sensitivity']:.4f}, specificity {point['specificity']:.4f} "
            f"(target sensitivity {point['target_sensitivity']:g})"
        )


def objective(metrics: dict[str, Any]) -> float:
    """The test AUC."""
    return float(metrics["auc"] or 0.0)
