"""Helpers for tests: write course folders, run the real CLI, read run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def write_course(
    folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> Path:
    """Write a course-format folder from (tensor, labels) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "train_tensor.npy", train[0])
    np.save(folder / "train_labels.npy", train[1])
    np.save(folder / "public_test_tensor.npy", test[0])
    np.save(folder / "public_test_labels.npy", test[1])
    return folder


def run_mammo(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``mammo <args>`` as a user would (a fresh process), capturing its output."""
    full_env = {**os.environ, "MAMMO_CACHE": str(cwd / "cache"), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "mammo_cli.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_folders(root: Path) -> list[Path]:
    """Every run folder (one holding config.yaml) under ``root``, sorted."""
    return sorted(path.parent for path in root.rglob("config.yaml") if ".hydra" not in path.parts)


def read_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one ``mammo: error:`` line naming ``fragments``, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mammo: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
