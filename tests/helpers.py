"""Helpers for tests: write course folders and files, run the real CLI, read run folders,
count a model's trainable parameters."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

#: the keys every metrics.json of a scored run holds (the interface contract)
CONTRACT_KEYS = {
    "task",
    "class_names",
    "counts",
    "accuracy",
    "loss",
    "auc",
    "f1",
    "f1_macro",
    "precision",
    "recall",
    "confusion_matrix",
    "epochs_run",
    "seed",
    "wall_time_s",
}
#: the files every finished training run folder holds
RUN_FILES = {
    "config.yaml",
    "metrics.json",
    "confusion_matrix.png",
    "history.csv",
    "curves.png",
    "model.keras",
    "train.log",
}


def compose(command: str, *overrides: str, with_hydra: bool = False):
    """The config ``mammo <command> <overrides>`` composes (Hydra's compose API);
    ``with_hydra``: with its ``hydra`` node (e.g. the sweeper's params)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from mammo_cli.cli import quote_values
    from mammo_cli.config import register_configs

    register_configs()
    with initialize_config_module("mammo_cli.conf", version_base="1.3"):
        return hydra_compose(
            command, overrides=quote_values(list(overrides)), return_hydra_config=with_hydra
        )


#: pretrained models in tests: random weights (no download), one epoch, batch 4
FAST = ("model.weights=null", "trainer.epochs=1", "trainer.batch_size=4", "trainer.progress=false")


def pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic pairs whose abnormalities cycle through labels 1..4 (every class)."""
    from mammo_cli.data.synthetic import generate_pairs

    tensor, labels = generate_pairs(n, seed=seed)
    labels[1::2] = np.resize([1, 2, 3, 4], n)
    return tensor, labels


def write_course(
    folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> Path:
    """Write a course-format folder from (tensor, labels) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "train_tensor.npy", train[0])
    np.save(folder / "train_labels.npy", train[1])
    np.save(folder / "public_test_tensor.npy", test[0])
    np.save(folder / "public_test_labels.npy", test[1])
    return folder


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    study: str | None = None,
    series: str | None = None,
    monochrome1: bool = False,
    rle: bool = False,
) -> None:
    """A single-frame MONOCHROME2 (or 1) DICOM of ``pixels`` (uint8/uint16), optionally
    RLE-compressed; new study/series UIDs unless given."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    # MONOCHROME1 stores tissue dark: readers must invert it back
    ds.PixelData = (np.iinfo(pixels.dtype).max - pixels if monochrome1 else pixels).tobytes()
    if rle:
        ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def run_mammo(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run ``mammo <args>`` as a user would (a fresh process), capturing its output;
    ``wrapper`` runs it through another program (e.g. ``setpriv ...``); ``timeout`` in
    seconds."""
    full_env = {**os.environ, "MAMMO_CACHE": str(cwd / "cache"), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "mammo_cli.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: run in a fresh process: mammo's entry point, then whether TensorFlow was imported
_PROBE = (
    "import sys; from mammo_cli.cli import main; rc = main(sys.argv[1:]); "
    "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow'); "
    "sys.exit(rc)"
)


def run_mammo_probe(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, bool]:
    """:func:`run_mammo`, also telling whether the process imported TensorFlow."""
    env = {**os.environ, "MAMMO_CACHE": str(cwd / "cache")}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, "tensorflow imported" in result.stdout


def run_folders(root: Path) -> list[Path]:
    """Every run folder (one holding config.yaml) under ``root``, sorted."""
    return sorted(path.parent for path in root.rglob("config.yaml") if ".hydra" not in path.parts)


def run_copy_with_model(run: Path, folder: Path, write_model: Callable[[Path], object]) -> Path:
    """A run folder at ``folder`` holding ``run``'s record (config, provenance, metrics)
    next to another ``model.keras``, written by ``write_model(path)``."""
    folder.mkdir(parents=True)
    for name in ("config.yaml", "provenance.json", "metrics.json"):
        (folder / name).write_text((run / name).read_text())
    write_model(folder / "model.keras")
    return folder


def read_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one ``mammo: error:`` line naming ``fragments``, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mammo: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha256(path: Path) -> str:
    """The sha256 hex digest of the file ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_first_byte(path: Path) -> None:
    """Change one byte of the file ``path`` (its first), keeping its size."""
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


def n_trainable(model: Any) -> int:
    """The number of trainable parameters of a Keras model."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)
