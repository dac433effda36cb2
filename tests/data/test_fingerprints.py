"""Data fingerprints: sha256 streamed, cached by (path, size, mtime), a corrupt or
concurrently written cache never trusted; the identity of a set of files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from mammo_cli.data.fingerprints import (
    CACHE_FILE,
    TEST_FILES,
    course_files,
    data_identity,
    fingerprint_files,
)
from mammo_cli.errors import MammoError
from tests.helpers import flip_first_byte, sha256, write_bytes

REPO = Path(__file__).resolve().parents[2]


def test_fingerprint_changes_with_one_byte(tmp_path):
    path = write_bytes(tmp_path / "data" / "public_test_tensor.npy", os.urandom(10_000))
    before = fingerprint_files({"t": path}, tmp_path / "cache")["t"]
    flip_first_byte(path)
    after = fingerprint_files({"t": path}, tmp_path / "cache")["t"]
    assert before["size"] == after["size"]
    assert before["sha256"] != after["sha256"]
    assert after["sha256"] == sha256(path)


def test_large_file_is_hashed_in_chunks(tmp_path):
    path = write_bytes(tmp_path / "big.npy", os.urandom(16 << 20))
    tracemalloc.start()
    try:
        fingerprint = fingerprint_files({"big": path}, tmp_path / "cache")["big"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fingerprint["sha256"] == sha256(path)
    assert peak < 4 << 20, f"peak {peak} bytes for a 16 MiB file"


def test_unchanged_file_is_not_read_again(tmp_path):
    """Same path, size and mtime: the cached hash is returned even though the bytes were
    changed behind the cache's back, which proves the file was not read. A new mtime is
    noticed."""
    path = write_bytes(tmp_path / "train_tensor.npy", os.urandom(4096))
    cache = tmp_path / "cache"
    first = fingerprint_files({"x": path}, cache)["x"]
    stat = path.stat()
    flip_first_byte(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint_files({"x": path}, cache)["x"] == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert fingerprint_files({"x": path}, cache)["x"]["sha256"] == sha256(path) != first["sha256"]


@pytest.mark.parametrize(
    "corrupt",
    [
        b"\x00\xffnot json",
        b'{"version": 1, "files": ',
        b"[1, 2, 3]",
        b'{"version": 1, "files": {"PATH": {"size": SIZE, "mtime_ns": MTIME, "sha256": "x"}}}',
    ],
)
def test_corrupt_cache_is_recomputed(tmp_path, corrupt):
    path = write_bytes(tmp_path / "labels.npy", os.urandom(512))
    cache = tmp_path / "cache"
    stat = path.stat()
    corrupt = (
        corrupt.replace(b"PATH", str(path).encode())
        .replace(b"SIZE", str(stat.st_size).encode())
        .replace(b"MTIME", str(stat.st_mtime_ns).encode())
    )
    write_bytes(cache / CACHE_FILE, corrupt)
    assert fingerprint_files({"l": path}, cache)["l"]["sha256"] == sha256(path)
    entries = json.loads((cache / CACHE_FILE).read_text())["files"]
    assert entries[str(path)]["sha256"] == sha256(path)


def test_unwritable_cache_still_fingerprints(tmp_path):
    path = write_bytes(tmp_path / "labels.npy", b"abc")
    blocker = write_bytes(tmp_path / "not_a_folder", b"")
    assert fingerprint_files({"l": path}, blocker / "cache")["l"]["sha256"] == sha256(path)


def test_missing_data_file_is_a_user_error(tmp_path):
    with pytest.raises(MammoError, match="cannot fingerprint data file"):
        fingerprint_files({"x": tmp_path / "absent.npy"}, tmp_path / "cache")


def test_concurrent_writers_leave_a_valid_cache(tmp_path):
    cache = tmp_path / "cache"
    code = (
        "import sys; from pathlib import Path; from mammo_cli.provenance import "
        "fingerprint_files as f\n"
        "root = Path(sys.argv[1])\n"
        "for i in range(30):\n"
        "    p = root / f'{sys.argv[2]}_{i}.npy'; p.write_bytes(bytes([i]) * 1000)\n"
        "    f({'p': p}, root / 'cache')\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), name], cwd=REPO)
        for name in ("a", "b")
    ]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    entries = json.loads((cache / CACHE_FILE).read_text())["files"]
    assert entries, "the cache holds the last writer's entries"
    for key, entry in entries.items():
        assert entry["sha256"] == sha256(Path(key))
    assert not [p for p in cache.iterdir() if p.name != CACHE_FILE], "no temporary files left"


def test_data_identity_follows_the_bytes_not_the_folder(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        for name in ("train_tensor.npy", "train_labels.npy", *TEST_FILES):
            write_bytes(folder / name, name.encode() * 50)
    flip_first_byte(second / "public_test_tensor.npy")
    copy = shutil.copytree(first, tmp_path / "copy")
    a, b, c = (
        fingerprint_files(course_files(folder), tmp_path / "cache")
        for folder in (first, second, copy)
    )
    assert data_identity(a) == data_identity(c)
    assert data_identity(a, TEST_FILES) != data_identity(b, TEST_FILES)
    assert data_identity(a, ["train_tensor.npy"]) == data_identity(b, ["train_tensor.npy"])
    assert len(data_identity(a)) == 16


def test_course_files_are_those_present(tmp_path):
    for name in ("train_tensor.npy", "train_labels.npy", "train_groups.npy", *TEST_FILES):
        write_bytes(tmp_path / name, b"x")
    assert list(course_files(tmp_path, ["test"])) == list(TEST_FILES)
    (tmp_path / "train_groups.npy").unlink()
    assert list(course_files(tmp_path)) == ["train_tensor.npy", "train_labels.npy", *TEST_FILES]


def test_a_folder_is_not_a_data_file(tmp_path):
    with pytest.raises(MammoError, match="cannot fingerprint data file .*Is a directory"):
        fingerprint_files({"x": tmp_path}, tmp_path / "cache")


def test_a_cache_of_another_version_is_not_trusted(tmp_path):
    path = write_bytes(tmp_path / "labels.npy", b"abc")
    stat = path.stat()
    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": "0" * 64}
    write_bytes(
        tmp_path / "cache" / CACHE_FILE,
        json.dumps({"version": 0, "files": {str(path): entry}}).encode(),
    )
    assert fingerprint_files({"l": path}, tmp_path / "cache")["l"]["sha256"] == sha256(path)
