"""Packaging: the wheel builds without setuptools warnings, ships every module and every
config file (``conf/`` as ``mammo_cli.conf``), and an installed mammo runs from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
NOT_IN_A_CLONE = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "outputs",
    "__pycache__",
    ".*_cache",
)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.slow
def test_the_wheel_ships_code_and_configs_and_runs_from_another_folder(tmp_path):
    source = tmp_path / "clone"  # what a fresh clone holds: no build/ left by an earlier build
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE))
    dist = tmp_path / "dist"
    build = run(
        sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), ".", cwd=source
    )
    output = (build.stdout + build.stderr).splitlines()
    warnings = [line for line in output if "Warning:" in line or "is absent from the" in line]
    assert not warnings, "\n".join(warnings)

    (wheel,) = dist.glob("mammo_cli-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {p.relative_to(source).as_posix() for p in (source / "mammo_cli").rglob("*.py")}
    expected |= {
        f"mammo_cli/conf/{path.relative_to(source / 'conf').as_posix()}"
        for path in (source / "conf").rglob("*")
        if path.suffix in (".py", ".yaml")
    }
    assert sorted(expected - shipped) == []

    site = tmp_path / "site"
    run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "-qq",
        "--no-deps",
        "--target",
        str(site),
        str(wheel),
        cwd=tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = run(
        sys.executable, "-c", "import mammo_cli; print(mammo_cli.__file__)", cwd=elsewhere, env=env
    )
    assert Path(probe.stdout.strip()).is_relative_to(site)  # the installed copy, not the clone
    job = run(
        sys.executable,
        "-m",
        "mammo_cli.cli",
        "train",
        "--cfg",
        "job",
        "task=2.1",
        cwd=elsewhere,
        env=env,
    )
    cfg = OmegaConf.create(job.stdout)
    assert cfg.task.name == "2.1" and cfg.model._target_.endswith("build_scratch")
    assert list(elsewhere.iterdir()) == []  # printing the config writes nothing
