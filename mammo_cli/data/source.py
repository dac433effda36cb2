"""Where a run's patches come from: a course folder, or the built-in demo set."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from mammo_cli.data.course import SPLIT_FILES
from mammo_cli.errors import MammoError


def default_cache_dir() -> Path:
    """``$MAMMO_CACHE`` if set, else ``~/.cache/mammo``."""
    return Path(os.environ.get("MAMMO_CACHE") or Path.home() / ".cache" / "mammo")


def ensure_demo_set(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the demo set's folder, generating it on first use (whole or not at all)."""
    from mammo_cli.data import synthetic

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    # The generator's own source is part of the name: a changed generator never reuses
    # a set cached by an older one.
    version = hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:12]
    name = (
        f"demo-{version}-seed{synthetic.DEMO_SEED}"
        f"-{synthetic.DEMO_TRAIN_PAIRS}x{synthetic.DEMO_TEST_PAIRS}"
    )
    folder = root / name
    if all((folder / f).is_file() for pair in SPLIT_FILES.values() for f in pair):
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    except OSError as exc:
        raise MammoError(
            f"cannot create the demo cache folder {root} ({exc.strerror}); "
            "set data.cache_dir=<writable folder> or MAMMO_CACHE"
        ) from exc
    try:
        synthetic.write_demo_set(staging)
        try:
            staging.rename(folder)
        except OSError:
            # Another process finished first; its copy is identical (same seed).
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_data_dir(data_dir: str | None, cache_dir: str | None = None) -> Path:
    """The course folder to read: ``data_dir`` if given, else the (cached) demo set."""
    if data_dir is None:
        return ensure_demo_set(cache_dir)
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise MammoError(f"data.dir={data_dir} is not a folder (expected a course-format folder)")
    return folder.resolve()
