"""The on-disk store of frozen-base features, shared by every run on this machine.

One entry is one ``<key>.npz`` file in ``<cache folder>/features/`` (the cache folder is
``data.cache_dir``, else ``$MAMMO_CACHE``, else ``~/.cache/mammo``). It holds the feature
arrays (``part_0``, ``part_1``, ... for a base with several outputs) and ``checksum``, the
SHA-256 of the key and of those arrays' dtypes, shapes and bytes (so a file
copied under another entry's name fails too). The key is chosen by the caller
(:mod:`mammo_cli.training.feature_cache` derives it from everything that determines the
features); this module only guarantees that what it returns is what was stored:

- an entry is written to a temporary file in the same folder and renamed onto its name,
  so a reader sees a complete file or none; two processes filling the same entry each
  rename their own complete file, the last rename wins, and both files are identical;
- a file that cannot be read, lacks an array, or whose arrays do not match the checksum
  (a flipped byte, a truncation, a crash before the data reached the disk) is a miss:
  the caller recomputes the features and overwrites the entry;
- the folder is bounded: after each write, the least recently used entries (reading an
  entry marks it used) are removed until the folder is under its size bound.
  :func:`clear_feature_cache` empties it.

This module does not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from mammo_cli.data.source import default_cache_dir
from mammo_cli.files import write_with

log = logging.getLogger(__name__)

#: the subfolder of the cache folder that holds the entries
FEATURES_SUBDIR = "features"
ENTRY_SUFFIX = ".npz"
#: temporary files older than this are left over by a killed writer and are removed
STALE_TEMP_S = 3600.0
#: bytes hashed per update, so that hashing a memory-mapped array reads it in pieces
_HASH_CHUNK = 1 << 26


def feature_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The features folder under ``cache_dir`` (None: ``$MAMMO_CACHE`` or ``~/.cache/mammo``)."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / FEATURES_SUBDIR


def update_with_array(hasher: hashlib._Hash, array: np.ndarray) -> None:
    """Feed ``array``'s dtype, shape and bytes (C order) to ``hasher``, in chunks."""
    array = np.asarray(array)
    hasher.update(f"{array.dtype.str}{array.shape};".encode())
    if array.ndim == 0 or array.size == 0:
        hasher.update(array.tobytes())
        return
    rows = max(1, _HASH_CHUNK // max(1, array[0].nbytes))
    for start in range(0, len(array), rows):
        hasher.update(np.ascontiguousarray(array[start : start + rows]).data)


def arrays_checksum(key: str, arrays: Iterable[np.ndarray]) -> np.ndarray:
    """SHA-256 of ``key`` and ``arrays`` (dtypes, shapes, bytes), as 32 uint8 values."""
    hasher = hashlib.sha256(key.encode())
    for array in arrays:
        update_with_array(hasher, array)
    return np.frombuffer(hasher.digest(), dtype=np.uint8)


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".")


class FeatureStore:
    """A folder of checksummed feature entries, at most ``max_bytes`` in total."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)

    def path(self, key: str) -> Path:
        """The file of entry ``key`` (a hex digest)."""
        return self.folder / f"{key}{ENTRY_SUFFIX}"

    def load(self, key: str) -> tuple[np.ndarray, ...] | None:
        """The arrays stored under ``key``, or None if absent, unreadable or corrupt.

        A hit marks the entry as used now (its modification time), for the LRU bound.
        """
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as entry:
                if not isinstance(entry, np.lib.npyio.NpzFile):
                    raise ValueError("not an .npz archive")
                names = sorted(
                    (n for n in entry.files if n.startswith("part_")),
                    key=lambda n: int(n.removeprefix("part_")),
                )
                arrays = tuple(entry[name] for name in names)
                checksum = entry["checksum"]
        except FileNotFoundError:
            return None
        except Exception as exc:  # numpy and zipfile raise many types for a damaged file
            log.warning("feature cache entry %s is unreadable (%s); recomputing", path, exc)
            return None
        if not arrays or not np.array_equal(checksum, arrays_checksum(key, arrays)):
            log.warning("feature cache entry %s fails its checksum; recomputing", path)
            return None
        # (removed meanwhile by another process's eviction: the arrays are still valid)
        with contextlib.suppress(OSError):
            os.utime(path)
        return arrays

    def save(self, key: str, arrays: Sequence[np.ndarray]) -> bool:
        """Store ``arrays`` under ``key`` (whole or not at all); then keep the size bound.

        Returns whether the entry was written: an entry larger than the bound is not,
        nor one the folder cannot take (a warning says why; the run goes on without it).
        """
        parts = [np.asarray(a) for a in arrays]
        size = sum(part.nbytes for part in parts)
        if size > self.max_bytes:
            log.warning(
                "features of %.1f MB exceed the feature cache bound of %.1f MB; not cached",
                size / 1e6,
                self.max_bytes / 1e6,
            )
            return False
        payload = {f"part_{i}": part for i, part in enumerate(parts)}
        payload["checksum"] = arrays_checksum(key, parts)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_with(self.path(key), lambda tmp: np.savez(tmp, **payload))
        except OSError as exc:
            log.warning("cannot write the feature cache in %s (%s); not cached", self.folder, exc)
            return False
        self.evict(keep=key)
        return True

    def evict(self, keep: str | None = None) -> tuple[int, int]:
        """Remove least recently used entries (never ``keep``) until the folder is within
        its bound, and temporary files left by killed writers; returns (files, bytes) removed."""
        entries, removed = [], []
        for path in self.files():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if _is_temporary(path):
                if time.time() - stat.st_mtime > STALE_TEMP_S:
                    removed.append((path, stat.st_size))
            else:
                entries.append((stat.st_mtime, path, stat.st_size))
        total = sum(size for _, _, size in entries)
        for _, path, size in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if path != (self.path(keep) if keep else None):
                removed.append((path, size))
                total -= size
        for path, _ in removed:
            path.unlink(missing_ok=True)
        return len(removed), sum(size for _, size in removed)

    def files(self) -> list[Path]:
        """The entries and temporary files in the folder."""
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir() if p.is_file() and p.name.endswith(ENTRY_SUFFIX)]

    def size_bytes(self) -> int:
        """Bytes the entries (and any temporary files) take now."""
        total = 0
        for path in self.files():
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                total += path.stat().st_size
        return total


def clear_feature_cache(cache_dir: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """Delete every feature entry (and temporary file) under ``cache_dir`` (None: the
    default cache folder); returns (files, bytes) removed. The demo set and anything
    else in the cache folder are kept."""
    files = removed_bytes = 0
    for path in FeatureStore(feature_cache_dir(cache_dir), max_bytes=0).files():
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # removed meanwhile by another process
            continue
        files, removed_bytes = files + 1, removed_bytes + size
    return files, removed_bytes
