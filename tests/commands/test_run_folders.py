"""Run folders through the real CLI: a folder mammo cannot write is refused in one line,
paths with non-ASCII characters work, and a finished holdout folder is never reused."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import (
    assert_user_error,
    read_metrics,
    run_folders,
    run_mammo,
    run_mammo_probe,
)

TINY = ("task=2.1", "trainer.epochs=1", "trainer.batch_size=16", "trainer.progress=false")
#: run a command as root without the powers that let root write anywhere
WITHOUT_DAC_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def _read_only_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes into a read-only folder anyway "
    "(test_a_read_only_run_folder_is_refused_to_root_without_dac_override covers root)",
)
def test_a_read_only_run_folder_is_refused(tiny_course, tmp_path):
    folder = _read_only_folder(tmp_path)
    args = (*TINY, f"data.dir={tiny_course}", f"hydra.run.dir={folder}")
    result, tensorflow = run_mammo_probe("train", *args, cwd=tmp_path)
    assert_user_error(result, f"cannot use {folder} as a run folder (Permission denied)")
    assert not tensorflow
    assert list(folder.iterdir()) == []


def _can_drop_dac_override() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    return subprocess.run([*WITHOUT_DAC_OVERRIDE, "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _can_drop_dac_override(),
    reason="needs root and setpriv (as another user, test_a_read_only_run_folder_is_refused)",
)
def test_a_read_only_run_folder_is_refused_to_root_without_dac_override(tiny_course, tmp_path):
    folder = _read_only_folder(tmp_path)
    args = (*TINY, f"data.dir={tiny_course}", f"hydra.run.dir={folder}")
    result = run_mammo("train", *args, cwd=tmp_path, wrapper=WITHOUT_DAC_OVERRIDE)
    assert_user_error(result, f"cannot use {folder} as a run folder (Permission denied)")
    assert list(folder.iterdir()) == []
    inside = folder / "new" / "run"  # a folder mammo would have to create there
    args = (*TINY, f"data.dir={tiny_course}", f"hydra.run.dir={inside}")
    result = run_mammo("train", *args, cwd=tmp_path, wrapper=WITHOUT_DAC_OVERRIDE)
    assert_user_error(result, f"cannot use {inside} as a run folder (Permission denied)")
    assert list(folder.iterdir()) == []


def test_a_run_folder_under_a_regular_file_is_refused(tiny_course, tmp_path):
    afile = tmp_path / "results.txt"
    afile.write_text("a file, not a folder\n")
    folder = afile / "run"
    args = (*TINY, f"data.dir={tiny_course}", f"hydra.run.dir={folder}")
    result, tensorflow = run_mammo_probe("train", *args, cwd=tmp_path)
    assert_user_error(result, f"cannot use {folder} as a run folder (Not a directory)")
    assert not tensorflow
    assert afile.read_text() == "a file, not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


def test_a_course_folder_under_a_non_ascii_path_trains(tiny_course, tmp_path):
    # an unquoted data.dir, and the default run folder under a non-ASCII working directory
    cwd = tmp_path / "projét"
    data = shutil.copytree(tiny_course, cwd / "données")
    result = run_mammo("train", *TINY, f"data.dir={data}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "train")
    metrics = read_metrics(run)
    assert metrics["epochs_run"] == 1 and metrics["data_dir"] == str(data)
    assert f"dir: {data}" in (run / "config.yaml").read_text(encoding="utf-8")


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_finished_holdout_folder_is_neither_reused_nor_resumed(tiny_course, tmp_path):
    root = tmp_path / "holdout"
    args = (*TINY, "holdout.k=2", f"data.dir={tiny_course}", f"hydra.run.dir={root}")
    result = run_mammo("holdout", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    before = _snapshot(root)
    assert "holdout.json" in before and "split_2/metrics.json" in before

    result, tensorflow = run_mammo_probe("holdout", *args, cwd=tmp_path)
    assert_user_error(
        result, f"{root} already holds a run (a finished mammo holdout folder)", "resume="
    )
    assert not tensorflow
    result, tensorflow = run_mammo_probe("holdout", f"resume={root}", cwd=tmp_path)
    assert_user_error(result, f"resume={root}: that run has finished; start a new run")
    assert not tensorflow
    assert _snapshot(root) == before  # nothing written, nothing touched
