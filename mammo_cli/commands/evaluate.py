"""``mammo evaluate run=<run dir>``: re-evaluate a saved model into a new run folder."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mammo_cli.commands import in_run_folder
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig) -> float:
    """Hydra task function; returns the test AUC."""
    import_tensorflow_quietly()
    from mammo_cli.evaluation.reports import print_metrics
    from mammo_cli.runs import evaluate_saved_run

    metrics = in_run_folder(
        cfg,
        lambda run_dir: evaluate_saved_run(
            Path(cfg.run),
            cfg.data,
            cfg.batch_size,
            run_dir,
            target_sensitivity=cfg.evaluate.target_sensitivity,
        ),
    )
    print_metrics(metrics, title=f"mammo evaluate: {cfg.run}")
    if "operating_point" in metrics:
        point = metrics["operating_point"]
        print(
            f"operating point: threshold {point['threshold']:.4f} -> sensitivity "
            f"{point['sensitivity']:.4f}, specificity {point['specificity']:.4f} "
            f"(target sensitivity {point['target_sensitivity']:g})"
        )
    return float(metrics["auc"])
