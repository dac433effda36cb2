"""``mammo_cli.files``: whole-file writes with the umask's permissions, strict JSON."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mammo_cli.evaluation.reports import score_summary
from mammo_cli.files import atomic_path, write_json, write_text, write_with
from tests.helpers import run_mammo


@pytest.fixture
def umask() -> Iterator[None]:
    """Lets a test set the process umask; the previous one is restored afterwards."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_the_umask_gives_a_new_file(umask, mask, expected, tmp_path):
    os.umask(mask)
    written = [
        write_text(tmp_path / "log.txt", "hello\n"),
        write_json(tmp_path / "metrics.json", {"accuracy": 0.5}),
        write_with(tmp_path / "tensor.npy", lambda tmp: np.save(tmp, np.arange(3))),
        write_with(tmp_path / "set.npz", lambda tmp: np.savez(tmp, a=np.arange(3))),
    ]
    for path in written:
        assert mode(path) == expected, path.name
    plain = tmp_path / "plain.txt"  # what any other program would get
    plain.write_text("x")
    assert mode(plain) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in written] + ["plain.txt"]
    )  # no temporary file left behind


def test_a_umask_without_owner_write_still_lets_writers_reopen_the_file(umask, tmp_path):
    os.umask(0o277)
    path = write_with(tmp_path / "tensor.npy", lambda tmp: np.save(tmp, np.arange(4)))
    assert mode(path) == 0o400
    np.testing.assert_array_equal(np.load(path), np.arange(4))


def test_replacing_a_file_is_atomic_and_a_failed_write_leaves_it_untouched(tmp_path):
    target = write_text(tmp_path / "metrics.json", "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        assert target.read_text() == "old\n"  # the real name never holds a partial file
        raise RuntimeError("writer crashed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    write_text(target, "new\n")
    assert target.read_text() == "new\n"


def test_json_is_strict_nan_and_infinity_become_null(tmp_path):
    payload = {
        "auc": float("nan"),
        "loss": np.float64("inf"),
        "ci": {"auc": [-math.inf, 0.9]},
        "pairs": (1.5, float("nan")),
        "seed": 7,
        "ok": True,
    }
    path = write_json(tmp_path / "metrics.json", payload)

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    loaded = json.loads(path.read_text(), parse_constant=refuse)
    assert loaded == {
        "auc": None,
        "loss": None,
        "ci": {"auc": [None, 0.9]},
        "pairs": [1.5, None],
        "seed": 7,
        "ok": True,
    }
    assert math.isnan(payload["auc"])  # the caller's data is not changed


def test_a_score_read_back_as_null_counts_as_nan_in_a_summary():
    runs = [{"accuracy": 0.5, "loss": 1.0, "auc": None, "f1": 0.4, "f1_macro": 0.3}] * 2
    mean, std = score_summary(runs)
    assert mean["accuracy"] == 0.5 and std["accuracy"] == 0.0
    assert math.isnan(mean["auc"]) and math.isnan(std["auc"])


def test_the_cli_writes_a_data_set_others_of_the_group_can_read(umask, tmp_path):
    os.umask(0o027)  # inherited by the mammo process
    result = run_mammo("data", "demo", f"out={tmp_path / 'demo'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "demo").iterdir())
    assert [p.name for p in files] == [
        "public_test_labels.npy",
        "public_test_tensor.npy",
        "train_labels.npy",
        "train_tensor.npy",
    ]
    assert {mode(p) for p in files} == {0o640}
