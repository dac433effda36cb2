"""``mammo explain run=<run dir> [input=<path>] [n=16]``: Grad-CAM overlays of predictions."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mammo_cli.commands import in_run_folder
from mammo_cli.tf_setup import import_tensorflow_quietly


def run(cfg: DictConfig) -> int:
    """Hydra task function; returns the number of overlays written."""
    import_tensorflow_quietly()
    from rich.console import Console

    from mammo_cli.errors import MammoError
    from mammo_cli.files import write_text
    from mammo_cli.inference import (
        EXPLANATIONS_FILE,
        OVERLAY_DIR,
        collect_items,
        explain_items,
        explain_test_set,
        open_run,
    )
    from mammo_cli.runs import is_ensemble_run

    def body(run_dir: Path) -> Path:
        run = Path(cfg.run)
        saved = open_run(run)
        if is_ensemble_run(run):
            raise MammoError(
                f"{run} is an ensemble; explain one of its member runs (Grad-CAM needs one model)"
            )
        if cfg.input is None:
            table = explain_test_set(saved, cfg.n, cfg.batch_size, run_dir)
        else:
            items = collect_items(Path(cfg.input), saved.pairs, cfg.roi)
            table = explain_items(saved, items, cfg.batch_size, run_dir, cfg.progress)
        return write_text(run_dir / EXPLANATIONS_FILE, table)

    table_path = in_run_folder(cfg, body)
    overlays = list((table_path.parent / OVERLAY_DIR).glob("*.png"))
    Console().print(
        f"[bold]mammo explain[/bold]: {len(overlays)} Grad-CAM overlay(s) in "
        f"{table_path.parent / OVERLAY_DIR}, table {table_path}"
    )
    return len(overlays)
