"""``mammo prepare``: build the course tensors from a CBIS-DDSM download."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from mammo_cli.data.course import SPLIT_FILES

log = logging.getLogger(__name__)


def _folder(cfg: DictConfig, key: str) -> Path:
    return Path(to_absolute_path(str(Path(str(cfg[key])).expanduser())))


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Read the CSVs and DICOMs, write the course folder ``out``; return its summary."""
    from mammo_cli.data.cbis_ddsm import PatchOptions, prepare

    source, csv_dir, out = (_folder(cfg, key) for key in ("source", "csv_dir", "out"))
    options = cfg.prepare
    patch = PatchOptions(
        patch_size=options.patch_size,
        resize=options.resize,
        breast_level=options.breast_level,
        breast_fraction=options.breast_fraction,
    )
    summary = prepare(
        source, csv_dir, out, patch, options.patient_overlap, options.workers, options.progress
    )
    log.info("summary: %s", {k: summary[k] for k in ("pairs", "counts", "skipped")})
    return summary


def show(cfg: DictConfig, summary: dict[str, Any], run_dir: Path) -> None:
    """Say how many pairs were written where, and what was skipped."""
    skipped = ", ".join(f"{n} {reason}" for reason, n in summary["skipped"].items()) or "none"
    print(
        f"mammo prepare: {summary['pairs']['train']} train and {summary['pairs']['test']} test "
        f"pairs from {summary['rows']} rows ({summary['reused_from_cache']} of "
        f"{summary['full_images']} full images reused); skipped: {skipped}"
    )
    print(
        f"wrote {_folder(cfg, 'out')} (course .npy files, train_groups.npy, manifest.csv, "
        "summary.json)"
    )
    for split, count in summary["pairs"].items():
        if not count:
            empty = SPLIT_FILES[split][0]
            print(f"note: no {split} pairs, so {empty} is empty (commands that use it refuse it)")
