"""Interrupted runs resume in their own folder: real processes killed after an epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import assert_user_error, read_metrics, run_mammo

FIT_ARGS = ("task=2.1", "model=scratch", "trainer.batch_size=8", "trainer.progress=false")


def start_mammo(*args: str, cwd: Path) -> subprocess.Popen:
    """``mammo <args>`` started in the background, as a scheduler would start it."""
    env = {**os.environ, "MAMMO_CACHE": str(cwd / "cache")}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mammo_cli.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after(
    process: subprocess.Popen, checkpoint: Path, sig: int
) -> subprocess.CompletedProcess:
    """Send ``sig`` once ``checkpoint`` (a run's first epoch checkpoint) appears."""
    deadline = time.monotonic() + 300
    while not checkpoint.is_file():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.05)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr)


def history_epochs(run: Path) -> list[str]:
    return [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]


@pytest.mark.parametrize(
    "sig",
    [
        pytest.param(signal.SIGTERM, id="sigterm"),
        pytest.param(signal.SIGKILL, id="sigkill", marks=pytest.mark.slow),
    ],
)
def test_killed_training_resumes_to_the_full_epoch_count(sig, tiny_course, tmp_path):
    run = tmp_path / "run"
    args = (*FIT_ARGS, f"data.dir={tiny_course}", "trainer.epochs=4", "trainer.patience=50")
    process = start_mammo("train", *args, f"hydra.run.dir={run}", cwd=tmp_path)
    killed = kill_after(process, run / "checkpoint" / "state.npz", sig)
    assert not (run / "metrics.json").exists(), "the run ended before it was killed"
    if sig == signal.SIGTERM:
        assert_user_error(killed, "interrupted", f"mammo train resume={run}")
        assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    else:
        assert killed.returncode == -signal.SIGKILL

    result = run_mammo("train", f"resume={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(run)
    assert metrics["epochs_run"] == 4
    assert history_epochs(run) == ["1", "2", "3", "4"]
    assert not (run / "checkpoint").exists() and not (run / "status.json").exists()
    if sig == signal.SIGTERM:
        assert_user_error(run_mammo("train", f"resume={run}", cwd=tmp_path), "has finished")


def test_resume_refuses_other_overrides_and_folders_that_are_not_runs(tmp_path):
    result = run_mammo("train", f"resume={tmp_path}", "trainer.epochs=9", cwd=tmp_path)
    assert_user_error(result, "drop the other overrides (trainer.epochs=9)")
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in ("train", "holdout"):
        result = run_mammo(command, f"resume={empty}", cwd=tmp_path)
        assert_user_error(result, f"resume={empty} is not a mammo run folder")
    assert list(empty.iterdir()) == []  # a refused resume writes nothing there


def test_holdout_resume_keeps_finished_splits_and_resumes_the_next(tiny_course, tmp_path):
    root = tmp_path / "holdout"
    args = (*FIT_ARGS, f"data.dir={tiny_course}", "holdout.k=2", "trainer.epochs=3")
    process = start_mammo("holdout", *args, f"hydra.run.dir={root}", cwd=tmp_path)
    killed = kill_after(process, root / "split_2" / "checkpoint" / "state.npz", signal.SIGTERM)
    assert killed.returncode != 0
    assert not (root / "split_2" / "metrics.json").exists(), "split 2 ended before the kill"
    split_1_model = (root / "split_1" / "model.keras").stat().st_mtime_ns

    result = run_mammo("holdout", f"resume={root}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "holdout split 1/2 finished earlier" in result.stdout
    assert (root / "split_1" / "model.keras").stat().st_mtime_ns == split_1_model
    summary = json.loads((root / "holdout.json").read_text())
    assert [run["split"] for run in summary["runs"]] == [1, 2] and summary["failed"] == []
    assert [run["epochs_run"] for run in summary["runs"]] == [3, 3]
    assert history_epochs(root / "split_2") == ["1", "2", "3"]
