"""``mammo predict run=<run dir> input=<path>``: classify new patches into predictions.csv."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mammo_cli.runs.folder import open_run
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig, run_dir: Path) -> dict[str, int]:
    """Predict every input sample into ``run_dir``; return the count of each predicted
    class (and of errors)."""
    import_tensorflow_quietly()
    from mammo_cli.files import write_text
    from mammo_cli.inference.inputs import collect_items
    from mammo_cli.inference.predictions import (
        PREDICTIONS_FILE,
        predict_items,
        predicted_counts,
        predictions_csv,
    )
    from mammo_cli.runs.predict import load_checked_model
    from mammo_cli.runs.scoring import task_positive

    saved = open_run(cfg.run)
    task = saved.task
    class_names = list(task.classes)
    model = load_checked_model(saved)
    items = collect_items(Path(cfg.input).expanduser(), bool(task.pairs), cfg.roi)
    predictions = predict_items(model, items, cfg.batch_size, cfg.predict.progress)
    decision = (class_names, task_positive(task), float(cfg.predict.threshold))
    write_text(run_dir / PREDICTIONS_FILE, predictions_csv(predictions, *decision))
    return predicted_counts(predictions, *decision)


def show(cfg: DictConfig, counts: dict[str, int], run_dir: Path) -> None:
    """Print how many samples were predicted as each class."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"mammo predict: {cfg.input}"), header_style="bold")
    table.add_column("predicted")
    table.add_column("samples", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    Console().print(table)
