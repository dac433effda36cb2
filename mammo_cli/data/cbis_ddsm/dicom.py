"""DICOM files of a CBIS-DDSM download: found by the UIDs in their headers, then decoded.

The CSV paths read ``<folder>/<StudyInstanceUID>/<SeriesInstanceUID>/<file>.dcm``, but a
TCIA download uses other folder names, so every ``*.dcm`` under the source tree is
indexed by the (StudyInstanceUID, SeriesInstanceUID) of its header and rows are matched
on those. pydicom is imported only when a file is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_cli.errors import MammoError

Uids = tuple[str, str]  # (StudyInstanceUID, SeriesInstanceUID)


@dataclass(frozen=True)
class DicomFile:
    """One DICOM file of the source tree, as its header describes it."""

    path: str
    shape: tuple[int, int]
    size: int
    mtime_ns: int


def _dicom_paths(source: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".dcm"):
                yield Path(folder) / name


def index_dicoms(source: Path) -> tuple[dict[Uids, list[DicomFile]], list[tuple[str, str]]]:
    """Index every ``*.dcm`` under ``source`` by (StudyInstanceUID, SeriesInstanceUID).

    Returns the index and the files whose header could not be read, with the reason.
    """
    import pydicom
    from pydicom.errors import BytesLengthException, InvalidDicomError

    # what pydicom raises for a broken header (NotImplementedError: an unknown VR)
    header_errors = (
        InvalidDicomError,
        BytesLengthException,
        NotImplementedError,
        OSError,
        AttributeError,
        ValueError,
        TypeError,
    )

    if not source.is_dir():
        raise MammoError(f"source={source} is not a folder (expected the CBIS-DDSM DICOM tree)")
    index: dict[Uids, list[DicomFile]] = {}
    unreadable: list[tuple[str, str]] = []
    tags = ["StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns"]
    for path in _dicom_paths(source):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
            uids = (str(header.StudyInstanceUID), str(header.SeriesInstanceUID))
            shape = (int(header.Rows), int(header.Columns))
            stat = path.stat()
        except header_errors as exc:
            unreadable.append((str(path), f"{type(exc).__name__}: {exc}"))
            continue
        index.setdefault(uids, []).append(
            DicomFile(str(path), shape, stat.st_size, stat.st_mtime_ns)
        )
    if not index:
        detail = f" ({len(unreadable)} unreadable .dcm file(s))" if unreadable else ""
        raise MammoError(f"no readable DICOM file (*.dcm) under source={source}{detail}")
    return index, unreadable


def read_pixels(path: str) -> tuple[np.ndarray, int]:
    """Decode one single-frame grayscale DICOM (any transfer syntax pydicom decodes).

    Returns the pixels (MONOCHROME1 inverted, so that tissue is bright) and the image's
    full-scale value 2**BitsStored - 1. Raises ValueError when the file cannot be used.
    """
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types for broken or exotic files
        raise ValueError(f"cannot decode {Path(path).name}: {type(exc).__name__}: {exc}") from exc
    if pixels.ndim != 2:
        raise ValueError(
            f"{Path(path).name} has pixel shape {pixels.shape}; expected one 2-D frame"
        )
    full_scale = 2 ** int(dataset.get("BitsStored", 16)) - 1
    if str(dataset.get("PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
        pixels = full_scale - pixels.astype(np.int64)
    return np.clip(pixels, 0, 65535).astype(np.uint16), full_scale
