"""Helpers shared by the benchmark scripts (``make bench`` runs them via run_all.py)."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

from mammo_cli.files import write_json


def compose_train(overrides: list[str]):
    """The ``mammo train`` config for ``overrides``, composed as the CLI would."""
    from hydra import compose, initialize_config_module

    from mammo_cli.cli import quote_values
    from mammo_cli.config import register_configs

    register_configs()
    with initialize_config_module("mammo_cli.conf", version_base="1.3"):
        return compose("train", overrides=quote_values(overrides))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_at_start": load,
    }


def json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json PATH``: where run_all.py collects this benchmark's results."""
    parser.add_argument("--json", type=Path, default=None, help="write the results here")


def emit(results: dict[str, Any], path: Path | None) -> None:
    """Write ``results`` to ``path`` (when given) for run_all.py."""
    if path is not None:
        write_json(path, results)
