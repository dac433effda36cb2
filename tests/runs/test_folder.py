"""The run folder: one module owns its layout; a run never starts in a folder that holds
another run, two processes never share one, and damaged files become one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mammo_cli.errors import MammoError
from mammo_cli.runs.folder import FolderLock, RunFolder, claim_folder, open_run, read_json
from tests.helpers import assert_user_error, run_mammo

TINY = ("trainer.epochs=1", "trainer.batch_size=16", "trainer.progress=false")


def test_claim_refuses_a_folder_holding_a_run_and_cleans_up_what_it_made(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    with pytest.raises(MammoError, match="already holds a run.*resume="):
        claim_folder(run)
    fresh = tmp_path / "a" / "b"
    lock = claim_folder(fresh)
    assert fresh.is_dir()
    lock.release()


def test_a_locked_folder_is_refused_and_nothing_is_left_behind(tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from mammo_cli.runs.folder import FolderLock; "
            "assert FolderLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); "
            "time.sleep(30)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MammoError, match="in use by another mammo process"):
            claim_folder(folder)
    finally:
        holder.kill()
        holder.wait()
    assert FolderLock(folder).acquire()  # the lock died with its process


def test_damaged_json_is_a_user_error(tmp_path):
    (tmp_path / "truncated.json").write_text('{"accuracy": 0.9')
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(MammoError, match="truncated.json is damaged"):
        read_json(tmp_path / "truncated.json")
    with pytest.raises(MammoError, match="expected a JSON object, found list"):
        read_json(tmp_path / "list.json")


def test_open_run_says_what_a_folder_is(tmp_path):
    folder = tmp_path / "evaluated"
    folder.mkdir()
    (folder / "provenance.json").write_text(json.dumps({"command": "evaluate"}))
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(MammoError, match="is a finished mammo evaluate folder; expected"):
        open_run(folder)
    assert RunFolder(folder).command == "evaluate"
    with pytest.raises(MammoError, match="is not a folder"):
        open_run(tmp_path / "nowhere")


def test_a_second_run_into_the_same_folder_is_refused(tiny_course, tmp_path):
    run = tmp_path / "run"
    args = ("train", f"data.dir={tiny_course}", *TINY, f"hydra.run.dir={run}")
    assert run_mammo(*args, cwd=tmp_path).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert_user_error(run_mammo(*args, cwd=tmp_path), "already holds a run", "resume=")
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before  # untouched


def test_two_runs_started_into_one_folder_one_is_refused(tiny_course, tmp_path):
    run = tmp_path / "run"
    args = ["train", f"data.dir={tiny_course}", *TINY, f"hydra.run.dir={run}"]
    env = {"MAMMO_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "mammo_cli.cli", *args]
    first, second = (
        subprocess.Popen(
            command, cwd=tmp_path, env={**_env(), **env}, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    )
    results = sorted((p.wait(timeout=600), p.stderr.read()) for p in (first, second))
    assert [code for code, _ in results] == [0, 2], results
    assert "mammo: error:" in results[1][1]
    assert ("in use by another mammo process" in results[1][1]) or (
        "already holds a run" in results[1][1]
    )
    assert RunFolder(run).is_finished


def test_a_data_refusal_leaves_status_json(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run = tmp_path / "run"
    result = run_mammo("train", f"data.dir={data}", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_user_error(result, "missing file")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "missing file" in status["error"]


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    return env
