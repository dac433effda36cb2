"""Where data comes from: the cached demo set and user folders."""

from __future__ import annotations

import pytest

from mammo_cli.data.course import load_split
from mammo_cli.data.source import ensure_demo_set, resolve_data_dir
from mammo_cli.errors import MammoError


def test_demo_set_is_generated_once_and_reused(tmp_path):
    folder = ensure_demo_set(tmp_path)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [
        "public_test_labels.npy",
        "public_test_tensor.npy",
        "train_labels.npy",
        "train_tensor.npy",
    ]
    stamp = (folder / "train_tensor.npy").stat().st_mtime_ns
    assert ensure_demo_set(tmp_path) == folder
    assert (folder / "train_tensor.npy").stat().st_mtime_ns == stamp
    assert [p for p in tmp_path.iterdir()] == [folder]  # no staging folder left behind
    split = load_split(folder, "train")
    assert split.images.shape == (1000, 150, 150) and split.images.dtype.name == "uint16"


def test_unset_data_dir_means_the_demo_set(tmp_path):
    assert resolve_data_dir(None, str(tmp_path)) == ensure_demo_set(tmp_path)


def test_unwritable_cache_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MammoError, match="cannot create the demo cache folder"):
        ensure_demo_set(blocker / "cache")
