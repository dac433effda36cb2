"""Provenance: installed versions, git state, device, and what differs between runs.

Real files in tmp folders and real subprocesses (git, a fresh Python); no TensorFlow in
this process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pytest

from mammo_cli import provenance
from mammo_cli.data.fingerprints import TEST_FILES, course_files, data_identity, fingerprint_files
from mammo_cli.provenance import (
    collect_provenance,
    compare_provenance,
    differences,
    git_state,
    installed_versions,
    key_facts,
)
from tests.helpers import flip_first_byte, sha256, write_bytes

REPO = Path(__file__).resolve().parents[1]


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this venv), from the repository."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **env},
    )


def test_versions_are_the_installed_ones():
    versions = installed_versions()
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    for name, distribution in [
        ("mammo", "mammo-cli"),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("numpy", "numpy"),
        ("scikit-learn", "scikit-learn"),
        ("scipy", "scipy"),
        ("hydra", "hydra-core"),
        ("omegaconf", "omegaconf"),
    ]:
        assert versions[name] == metadata.version(distribution), name


def test_collect_provenance_is_json_ready_and_complete(tmp_path):
    folder = tmp_path / "course"
    for name in ("train_tensor.npy", "train_labels.npy", *TEST_FILES):
        write_bytes(folder / name, name.encode() * 100)
    argv = ["train", "task=2.1", "trainer.epochs=1"]
    started = datetime(2025, 3, 4, 5, 6, 7).astimezone()
    record = collect_provenance(
        "train", argv, argv[1:], course_files(folder), started, cache_dir=tmp_path / "cache"
    )
    assert json.loads(json.dumps(record)) == record
    assert record["command"] == "train"
    assert record["argv"] == argv and record["overrides"] == argv[1:]
    assert datetime.fromisoformat(record["started"]) == started
    assert datetime.fromisoformat(record["started"]).tzinfo is not None
    assert record["versions"] == installed_versions()
    assert record["cpu"]["model"] and isinstance(record["cpu"]["native_bfloat16"], bool)
    # other tests of this worker may have loaded TensorFlow
    assert record["gpu"]["probed"] == ("tensorflow" in sys.modules)
    assert set(record["data"]) == {"train_tensor.npy", "train_labels.npy", *TEST_FILES}
    for name, fingerprint in record["data"].items():
        assert fingerprint["sha256"] == sha256(folder / name)
        assert fingerprint["size"] == (folder / name).stat().st_size
        assert fingerprint["path"] == str((folder / name).resolve())
    facts = key_facts(record)
    assert facts["tensorflow"] == metadata.version("tensorflow")
    assert facts["test_data"] == data_identity(record["data"], TEST_FILES)


def test_cpu_facts_agree_with_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this platform")
    text = cpuinfo.read_text()
    assert f": {provenance.cpu_model()}\n" in text
    flags = text.split()
    assert provenance.cpu_has_native_bfloat16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_import_does_not_load_tensorflow(tmp_path):
    (tmp_path / "f.npy").write_bytes(b"x")
    code = (
        "import sys; from datetime import datetime; from pathlib import Path\n"
        "from mammo_cli.provenance import collect_provenance\n"
        f"p = collect_provenance('t', [], [], {{'f': Path({str(tmp_path / 'f.npy')!r})}}, "
        f"datetime.now(), Path({str(tmp_path / 'cache')!r}))\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "print(p['gpu'], loaded)"
    )
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'probed': False, 'names': []} []"


def test_gpus_are_probed_once_tensorflow_is_loaded():
    code = (
        "import json, tensorflow as tf; from mammo_cli.provenance import gpu_state\n"
        "print(json.dumps([gpu_state(), len(tf.config.list_physical_devices('GPU'))]))"
    )
    result = python(code, TF_CPP_MIN_LOG_LEVEL="3")
    assert result.returncode == 0, result.stderr
    state, count = json.loads(result.stdout.splitlines()[-1])
    assert state["probed"] is True
    assert len(state["names"]) == count


def test_git_state_of_this_checkout():
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    state = git_state()
    assert state is not None and state["commit"] == head
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert state["dirty"] == bool(status.strip())


def test_no_git_state_outside_a_repository(tmp_path):
    package = tmp_path / "mammo_cli"
    shutil.copytree(REPO / "mammo_cli", package, ignore=shutil.ignore_patterns("__pycache__"))
    assert git_state(package) is None


def test_no_git_state_for_an_untracked_copy_inside_a_repository(tmp_path):
    """An installed copy in some project's (ignored) .venv is not that project's code."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    package = tmp_path / ".venv" / "mammo_cli"
    write_bytes(package / "__init__.py", b"")
    write_bytes(tmp_path / ".gitignore", b".venv/\n")
    assert git_state(package) is None


def fingerprints(folder: Path, cache: Path) -> dict:
    return fingerprint_files(course_files(folder), cache)


def record(data: dict, **versions: str) -> dict:
    """A provenance as collect_provenance writes it, with chosen data and versions."""
    return {
        "versions": {"python": "3.11.7", "mammo": "0.1.0", "tensorflow": "2.21.0", **versions},
        "git": None,
        "cpu": {"model": "Test CPU", "native_bfloat16": False},
        "gpu": {"probed": False, "names": []},
        "data": data,
    }


@pytest.fixture
def two_folders(tmp_path):
    """Two course folders with equal training files and test tensors one byte apart."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        for name in ("train_tensor.npy", "train_labels.npy", *TEST_FILES):
            write_bytes(folder / name, name.encode() * 50)
    flip_first_byte(second / "public_test_tensor.npy")
    return first, second


def test_differences_name_the_data_file_and_the_versions(two_folders, tmp_path):
    first, second = two_folders
    a, b = (fingerprints(folder, tmp_path / "cache") for folder in (first, second))
    runs = {
        "run0": record(a),
        "run1": record(a),
        "run2": record(b, tensorflow="2.20.0"),
    }
    found = differences(runs)
    assert [(d.kind, d.name) for d in found] == [
        ("data", "public_test_tensor.npy"),
        ("version", "tensorflow"),
    ]
    data, version = found
    assert data.values == {
        "run0": a["public_test_tensor.npy"]["sha256"],
        "run1": a["public_test_tensor.npy"]["sha256"],
        "run2": b["public_test_tensor.npy"]["sha256"],
    }
    assert version.note() == "tensorflow differs: 2.21.0 (run0, run1); 2.20.0 (run2)"
    sha_a = a["public_test_tensor.npy"]["sha256"][:12]
    assert data.note().startswith(f"data file public_test_tensor.npy differs: {sha_a} (run0, run1)")
    assert differences({"run0": runs["run0"], "run1": runs["run1"]}) == []


def test_compare_provenance_on_the_test_files(two_folders, tmp_path):
    first, second = two_folders
    a, b = (fingerprints(folder, tmp_path / "cache") for folder in (first, second))
    b.pop("train_labels.npy")  # a training file only one run read: not a test difference
    diff = compare_provenance(record(a), record(b, keras="3.15.1"), TEST_FILES)
    assert diff["data"] == {
        "public_test_tensor.npy": [
            a["public_test_tensor.npy"]["sha256"],
            b["public_test_tensor.npy"]["sha256"],
        ]
    }
    assert diff["version"] == {"keras": [None, "3.15.1"]}
    assert diff["device"] == {}
    assert compare_provenance(record(a), record(a), TEST_FILES)["data"] == {}
    assert compare_provenance(record(a), record(b))["data"]["train_labels.npy"][1] is None


def test_differences_in_mammo_commit_and_device():
    a = record({})
    b = {
        **record({}),
        "git": {"commit": "0123456789abcdef" * 2, "dirty": True},
        "gpu": {"probed": True, "names": ["NVIDIA L4"]},
    }
    found = {(d.kind, d.name): d for d in differences({"a": a, "b": b})}
    assert set(found) == {("version", "mammo"), ("device", "device")}
    assert found["version", "mammo"].values == {"a": "0.1.0", "b": "0.1.0 (0123456789ab, modified)"}
    assert found["device", "device"].values == {"a": "Test CPU", "b": "Test CPU + NVIDIA L4"}
