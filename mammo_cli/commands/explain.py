"""``mammo explain run=<run dir> [input=<path>] [n=16]``: Grad-CAM overlays of predictions."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mammo_cli.runs.folder import open_run
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig, run_dir: Path) -> list[Path]:
    """Write the overlays and explanations.csv into ``run_dir``; return the overlays."""
    import_tensorflow_quietly()
    from mammo_cli.data.dataset import load_task_data
    from mammo_cli.files import write_text
    from mammo_cli.inference.explain import (
        EXPLANATIONS_FILE,
        OVERLAY_DIR,
        explain_items,
        explain_test_set,
    )
    from mammo_cli.inference.inputs import collect_items
    from mammo_cli.runs.predict import load_checked_model

    saved = open_run(cfg.run)
    task = saved.task
    class_names = list(task.classes)
    model = load_checked_model(saved)
    if cfg.input is None:
        test = load_task_data(saved.config().data, task, with_train=False).test
        table = explain_test_set(model, test, cfg.n, cfg.batch_size, run_dir)
    else:
        items = collect_items(Path(cfg.input).expanduser(), bool(task.pairs), cfg.roi)
        table = explain_items(model, class_names, items, cfg.batch_size, run_dir, cfg.progress)
    write_text(run_dir / EXPLANATIONS_FILE, table)
    return list((run_dir / OVERLAY_DIR).glob("*.png"))


def show(cfg: DictConfig, overlays: list[Path], run_dir: Path) -> None:
    """Say how many overlays were written, and where."""
    from rich.console import Console
    from rich.markup import escape

    from mammo_cli.inference.explain import EXPLANATIONS_FILE, OVERLAY_DIR

    where = escape(f"{run_dir / OVERLAY_DIR}, table {run_dir / EXPLANATIONS_FILE}")
    Console().print(f"[bold]mammo explain[/bold]: {len(overlays)} Grad-CAM overlay(s) in {where}")
