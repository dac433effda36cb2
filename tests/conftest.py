"""Shared fixtures (once per session): tiny course-format folders, a tiny scratch run, a
tiny siamese run, a tiny ensemble of two scratch runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mammo_cli.data.synthetic import generate_pairs
from mammo_cli.runs.folder import RunFolder
from tests.helpers import FAST, pairs, run_folders, run_mammo, write_course

#: one epoch of the scratch CNN on the tiny course
ONE_EPOCH = ("trainer.epochs=1", "trainer.batch_size=16", "trainer.progress=false")
#: the ensemble's member weights (normalised to 0.75, 0.25)
ENSEMBLE_WEIGHTS = (3.0, 1.0)


@pytest.fixture(scope="session")
def tiny_course(tmp_path_factory) -> Path:
    """A small but complete course folder: 40 training pairs, 16 test pairs."""
    folder = tmp_path_factory.mktemp("tiny_course")
    return write_course(folder, generate_pairs(40, seed=1), generate_pairs(16, seed=2))


@pytest.fixture(scope="session")
def pair_course(tmp_path_factory) -> Path:
    """8 training and 4 test pairs whose abnormalities cover every class."""
    return write_course(tmp_path_factory.mktemp("pair_course"), pairs(8, 1), pairs(4, 2))


@pytest.fixture(scope="session")
def scratch_run(tiny_course, tmp_path_factory) -> Path:
    """One epoch of ``mammo train task=2.1`` (scratch CNN: mass, calcification) on the tiny
    course, in float32: tests compare code paths exactly (bfloat16 rounds them differently)."""
    cwd = tmp_path_factory.mktemp("scratch")
    result = run_mammo(
        "train",
        "task=2.1",
        f"data.dir={tiny_course}",
        *ONE_EPOCH,
        "trainer.precision=float32",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "train")
    return run


@pytest.fixture(scope="session")
def siamese_run(pair_course, tmp_path_factory) -> Path:
    """One epoch of ``mammo train task=siamese`` on the pair course (random VGG16 weights)."""
    cwd = tmp_path_factory.mktemp("siamese")
    result = run_mammo("train", "task=siamese", f"data.dir={pair_course}", *FAST, cwd=cwd)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "train")
    return run


@pytest.fixture(scope="session")
def members(tiny_course, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Scratch runs of tasks 2.1 and 2.2 with softmax and sigmoid outputs (one process)."""
    cwd = tmp_path_factory.mktemp("members")
    result = run_mammo(
        "train",
        "-m",
        "task=2.1,2.2",
        "model=scratch",
        "model.output_activation=softmax,sigmoid",
        f"data.dir={tiny_course}",
        *ONE_EPOCH,
        f"hydra.sweep.dir={cwd / 'sweep'}",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    runs = {}
    for run in run_folders(cwd / "sweep"):
        cfg = RunFolder(run).config()
        runs[cfg.task.name, cfg.model.output_activation] = run
    assert len(runs) == 4
    return runs


@pytest.fixture(scope="session")
def ensemble_run(members, tmp_path_factory) -> tuple[Path, str]:
    """The weighted ensemble of the two task 2.1 runs."""
    cwd = tmp_path_factory.mktemp("ensemble")
    result = run_mammo(
        "ensemble",
        f"members=[{members['2.1', 'softmax']},{members['2.1', 'sigmoid']}]",
        f"ensemble.weights=[{ENSEMBLE_WEIGHTS[0]},{ENSEMBLE_WEIGHTS[1]}]",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(cwd / "outputs" / "ensemble")
    return run, result.stdout
