"""Writing artifacts whole: every file goes to a temporary name first, then is renamed.

A reader (or a crashed run) therefore never sees a half-written ``metrics.json``,
plot or model: the file is either absent or complete. Files get the permissions the
user's umask gives any new file (``0o666 & ~umask``), so a group that may read the
user's files may read mammo's too. JSON is strict: NaN and infinity are written as
``null``, which every JSON reader accepts.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _new_file(path: Path) -> int:
    """Create ``path`` (which must not exist) and return the mode the umask gave it.

    The file is left writable by its owner until :func:`atomic_path` restores that mode,
    so that writers which reopen it by name work under any umask.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        mode = os.fstat(fd).st_mode & 0o777
        os.fchmod(fd, mode | 0o600)
    finally:
        os.close(fd)
    return mode


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary name keeps the suffix of ``path`` so that writers which infer the
    format from the extension (matplotlib, Keras, numpy) behave as for the real name.
    On error the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix
    tmp = target.with_name(f".{target.stem}.{secrets.token_hex(8)}{suffix}.part{suffix}")
    mode = _new_file(tmp)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_with(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in nested dicts, lists, tuples) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Atomically write ``payload`` as indented, strict JSON (NaN and infinity as null)."""
    text = json.dumps(_finite_or_none(payload), indent=2, allow_nan=False)
    return write_text(path, text + "\n")
