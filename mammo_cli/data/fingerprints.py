"""The identity of data files: their sha256, streamed and cached by (path, size, mtime).

A folder path is not an identity (files change); the bytes are. Hashes are kept in a
small JSON cache in mammo's cache folder so that an unchanged 250 MB set is read once,
not on every run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mammo_cli.data.course import GROUPS_FILE, SPLIT_FILES
from mammo_cli.errors import MammoError
from mammo_cli.files import write_json

log = logging.getLogger(__name__)

#: the course files that make a test set: runs are compared only on the same bytes
TEST_FILES = SPLIT_FILES["test"]
#: the cache, inside the cache folder given (mammo's: ``$MAMMO_CACHE`` or ~/.cache/mammo)
CACHE_FILE = "fingerprints.json"
_CACHE_VERSION = 1
_CHUNK = 1 << 20  # bytes hashed at a time


def _mtime_text(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc).isoformat()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The cache's entries; an unreadable or malformed cache is treated as empty."""
    try:
        cache = json.loads(path.read_text())
        entries = cache["files"] if cache["version"] == _CACHE_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {
        key: entry
        for key, entry in entries.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("mtime_ns"), int)
        and isinstance(entry.get("sha256"), str)
        and len(entry["sha256"]) == 64
    }


def _unchanged(entry: Mapping[str, Any], stat: os.stat_result) -> bool:
    return (entry["size"], entry["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)


def _still_current(key: str, entry: Mapping[str, Any]) -> bool:
    try:
        return _unchanged(entry, os.stat(key))
    except OSError:
        return False


def _entry(path: Path, cached: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """``path``'s cache entry: ``cached`` while size and mtime match, else a new hash;
    and whether the file was hashed."""
    stat = path.stat()
    if cached is not None and _unchanged(cached, stat):
        return cached, False
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}, True


def fingerprint_files(files: Mapping[str, Path], cache_dir: Path) -> dict[str, dict[str, Any]]:
    """name -> ``{"path", "size", "mtime", "sha256"}`` of each file, sha256 streamed.

    Hashes are cached in ``cache_dir/fingerprints.json`` by (absolute path, size,
    mtime_ns): an unchanged file is not read again. The cache is rewritten whole (last
    writer wins, merged with what another process wrote meanwhile); a corrupt cache is
    ignored, and an unwritable one only costs re-hashing next time.
    """
    cache_path = Path(cache_dir) / CACHE_FILE
    cache = _read_cache(cache_path)
    fresh: dict[str, dict[str, Any]] = {}
    result = {}
    for name, file in files.items():
        path = Path(file).expanduser().resolve()
        key = str(path)
        try:
            entry, hashed = _entry(path, cache.get(key))
        except OSError as exc:
            reason = exc.strerror or exc
            raise MammoError(f"cannot fingerprint data file {path} ({reason})") from exc
        if hashed and _still_current(key, entry):  # not modified while it was read
            fresh[key] = entry
        result[name] = {
            "path": key,
            "size": entry["size"],
            "mtime": _mtime_text(entry["mtime_ns"]),
            "sha256": entry["sha256"],
        }
    if fresh:
        merged = {**_read_cache(cache_path), **fresh}
        merged = {key: entry for key, entry in merged.items() if _still_current(key, entry)}
        try:
            write_json(cache_path, {"version": _CACHE_VERSION, "files": merged})
        except OSError as exc:
            log.warning("cannot write the fingerprint cache %s (%s)", cache_path, exc)
    return result


def course_files(folder: Path, splits: Sequence[str] = ("train", "test")) -> dict[str, Path]:
    """The course files of ``splits`` present in ``folder`` (``train`` adds its groups file)."""
    names = [name for split in splits for name in SPLIT_FILES[split]]
    if "train" in splits:
        names.append(GROUPS_FILE)
    return {name: folder / name for name in names if (folder / name).is_file()}


def data_identity(
    fingerprints: Mapping[str, Mapping[str, Any]], names: Iterable[str] | None = None
) -> str:
    """A 16-hex digest of the named files' contents (all files when ``names`` is None).

    Equal for the same bytes under the same file names, wherever the folder is.
    """
    chosen = sorted(fingerprints if names is None else set(names) & set(fingerprints))
    text = "\n".join(f"{name} {fingerprints[name]['sha256']}" for name in chosen)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
