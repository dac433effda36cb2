"""``mammo predict run=<run dir> input=<path>``: classify new patches into predictions.csv."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mammo_cli.commands import in_run_folder
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig) -> int:
    """Hydra task function; returns the number of samples predicted (error rows excluded)."""
    import_tensorflow_quietly()
    from rich.console import Console
    from rich.table import Table

    from mammo_cli.files import write_text
    from mammo_cli.inference import (
        PREDICTIONS_FILE,
        check_threshold,
        collect_items,
        open_run,
        predict_items,
        predicted_counts,
        predictions_csv,
    )

    def body(run_dir: Path) -> dict[str, int]:
        saved = open_run(Path(cfg.run))
        threshold = float(cfg.predict.threshold)
        check_threshold(threshold, saved.positive_class)
        items = collect_items(Path(cfg.input), saved.pairs, cfg.roi)
        predictions = predict_items(saved.model, items, cfg.batch_size, cfg.predict.progress)
        args = (saved.class_names, saved.positive_class, threshold)
        write_text(run_dir / PREDICTIONS_FILE, predictions_csv(predictions, *args))
        return predicted_counts(predictions, *args)

    counts = in_run_folder(cfg, body)
    table = Table(title=f"mammo predict: {cfg.input}", header_style="bold")
    table.add_column("predicted")
    table.add_column("samples", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    Console().print(table)
    return sum(counts.values()) - counts["errors"]
