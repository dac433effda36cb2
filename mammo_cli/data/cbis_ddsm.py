"""Building the course tensors from the public CBIS-DDSM release (SPEC 1.5, ``mammo prepare``).

TCIA distributes CBIS-DDSM as DICOM full mammograms, ROI-mask DICOMs and cropped-lesion
DICOMs, described by four CSV files (mass/calc x train/test, one row per abnormality).
This module turns them into the course format:

1. **Rows.** Every ``*_case_description_{train,test}_set.csv`` file in ``csv_dir`` is read
   (both spellings of the density column; quoted paths that end in a newline). Label:
   mass 1/2, calcification 3/4, benign/malignant by ``pathology``
   (``BENIGN_WITHOUT_CALLBACK`` counts as benign). The split is the CSV's (train/test).
2. **Files by UID.** CSV paths read ``<folder>/<StudyInstanceUID>/<SeriesInstanceUID>/
   <file>.dcm`` but a TCIA download uses other folder names, so every DICOM under
   ``source`` is indexed by the UIDs in its header and rows are matched on those.
   The ROI mask is told from the cropped image by content: of the files in the row's
   ROI/crop series, the mask is the one that has the full image's size and holds only
   two values (the column it is listed in is not trusted: the calc CSVs swap them).
3. **Patches.** Abnormality = the full image cut by the mask's bounding box. Baseline =
   a box of the same size right next to it, tried left, right, above, below (first
   valid wins): inside the image, overlapping no lesion box of the same image, and
   mostly breast: at least ``breast_fraction`` (0.9) of its pixels above
   ``breast_level`` (0.05) of the image's full scale (2**BitsStored - 1). The full-image
   background of a scanned film sits near 0, the breast well above 5 % of full scale.
   Both patches are resized to ``patch_size`` (150) with ``resize`` (nearest) and stored
   as uint16; MONOCHROME1 images are inverted first so that tissue is bright.
4. **Patients.** A patient whose rows fall in both splits (31 in the real CSVs, via the
   mass and calc files) is resolved by ``patient_overlap``: ``drop_train`` (default:
   the official test rows stay whole, that patient's training rows are skipped),
   ``move_to_test`` or ``error``.

Rows that cannot be used (files absent or corrupt, no mask, no room for a baseline)
are skipped and reported with their reason, never a crash. Each full image's result
is cached under ``<out>/.prepare-cache`` so a re-run resumes; outputs are deterministic
(byte-identical for the same inputs and options).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from mammo_cli.data.course import RAW_LABELS, SPLIT_FILES
from mammo_cli.errors import MammoError
from mammo_cli.files import atomic_path, write_json, write_text, write_with

CSV_PATTERN = re.compile(r"^(mass|calc)_case_description_(train|test)_set\.csv$", re.IGNORECASE)
REQUIRED_COLUMNS = (
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "pathology",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
)
DENSITY_COLUMNS = ("breast_density", "breast density")
#: abnormality type -> label of (benign, malignant)
TYPE_LABELS = {"mass": (1, 2), "calcification": (3, 4)}
PATHOLOGY_MALIGNANT = {"MALIGNANT": True, "BENIGN": False, "BENIGN_WITHOUT_CALLBACK": False}
#: the order in which baseline positions are tried
BASELINE_SIDES = ("left", "right", "above", "below")
RESIZE_METHODS = ("nearest", "bilinear")
OVERLAP_POLICIES = ("drop_train", "move_to_test", "error")
CACHE_DIR = ".prepare-cache"
_CACHE_VERSION = 1
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")

Box = tuple[int, int, int, int]  # (top, left, bottom, right), bottom/right exclusive
Uids = tuple[str, str]  # (StudyInstanceUID, SeriesInstanceUID)


@dataclass(frozen=True)
class PatchOptions:
    """How patches are cut and resized (the course's values are the defaults)."""

    patch_size: int = 150
    resize: str = "nearest"
    breast_level: float = 0.05
    breast_fraction: float = 0.9


@dataclass(frozen=True)
class Lesion:
    """One CSV row: an abnormality of one full image."""

    csv_file: str
    row: int  # 1-based record number after the header
    split: str  # train | test (after the patient-overlap policy)
    csv_split: str
    patient_id: str
    side: str
    view: str
    abnormality_id: str
    abnormality_type: str
    pathology: str
    label: int
    density: str
    image_uids: Uids
    roi_uids: tuple[Uids, ...]  # series named by the cropped-image and ROI-mask columns

    @property
    def name(self) -> str:
        """How reports name the row: ``mass_case_description_train_set.csv row 12``."""
        return f"{self.csv_file} row {self.row}"


@dataclass(frozen=True)
class Skip:
    """A row that produced no pair, and why."""

    csv_file: str
    row: int
    patient_id: str
    abnormality_id: str
    reason: str
    detail: str


@dataclass
class Catalogue:
    """Rows read from the CSV files, plus those refused before any image is opened."""

    lesions: list[Lesion] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    overlap_patients: list[str] = field(default_factory=list)


def _skip(lesion: Lesion, reason: str, detail: str) -> Skip:
    return Skip(
        lesion.csv_file, lesion.row, lesion.patient_id, lesion.abnormality_id, reason, detail
    )


def _uids(path: str) -> Uids | None:
    parts = [part for part in path.strip().replace("\\", "/").split("/") if part]
    if len(parts) < 3 or not (_UID.match(parts[-3]) and _UID.match(parts[-2])):
        return None
    return parts[-3], parts[-2]


def _csv_files(csv_dir: Path) -> list[tuple[Path, str]]:
    if not csv_dir.is_dir():
        raise MammoError(f"csv_dir={csv_dir} is not a folder (expected the CBIS-DDSM CSV files)")
    found = sorted(
        (path, match[2].lower())
        for path in csv_dir.iterdir()
        if (match := CSV_PATTERN.match(path.name)) and path.is_file()
    )
    if not found:
        raise MammoError(
            f"no CBIS-DDSM CSV file in {csv_dir} (expected e.g. "
            "mass_case_description_train_set.csv, calc_case_description_test_set.csv)"
        )
    return found


def _parse_row(record: dict[str, str], csv_file: str, row: int, split: str) -> Lesion | str:
    """A Lesion, or the reason the row is unusable."""
    kind = record["abnormality type"].strip().lower()
    pathology = record["pathology"].strip().upper()
    if kind not in TYPE_LABELS:
        return f"abnormality type {record['abnormality type']!r} (expected mass or calcification)"
    if pathology not in PATHOLOGY_MALIGNANT:
        return f"pathology {record['pathology']!r} (expected {', '.join(PATHOLOGY_MALIGNANT)})"
    image_uids = _uids(record["image file path"])
    roi_uids = tuple(
        dict.fromkeys(
            uids
            for column in ("ROI mask file path", "cropped image file path")
            if (uids := _uids(record[column])) is not None
        )
    )
    if image_uids is None or not roi_uids:
        return "file paths without <StudyInstanceUID>/<SeriesInstanceUID>/<file> parts"
    density = next((record[c].strip() for c in DENSITY_COLUMNS if c in record), "")
    return Lesion(
        csv_file=csv_file,
        row=row,
        split=split,
        csv_split=split,
        patient_id=record["patient_id"].strip(),
        side=record["left or right breast"].strip(),
        view=record["image view"].strip(),
        abnormality_id=record["abnormality id"].strip(),
        abnormality_type=kind,
        pathology=pathology,
        label=TYPE_LABELS[kind][PATHOLOGY_MALIGNANT[pathology]],
        density=density,
        image_uids=image_uids,
        roi_uids=roi_uids,
    )


def read_case_csvs(csv_dir: Path, patient_overlap: str = "drop_train") -> Catalogue:
    """Read every CBIS-DDSM CSV in ``csv_dir``; resolve patients found in both splits."""
    if patient_overlap not in OVERLAP_POLICIES:
        raise MammoError(
            f"prepare.patient_overlap={patient_overlap}; "
            f"expected one of {', '.join(OVERLAP_POLICIES)}"
        )
    catalogue = Catalogue()
    for path, split in _csv_files(csv_dir):
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                columns = [name.strip() for name in reader.fieldnames or []]
                missing = [c for c in REQUIRED_COLUMNS if c not in columns]
                if missing:
                    raise MammoError(
                        f"{path} lacks column(s) {', '.join(repr(c) for c in missing)} "
                        f"(found: {', '.join(columns) or 'no header'})"
                    )
                reader.fieldnames = columns
                for row, record in enumerate(reader, start=1):
                    parsed = _parse_row(record, path.name, row, split)
                    if isinstance(parsed, str):
                        patient = (record.get("patient_id") or "").strip()
                        abnormality = (record.get("abnormality id") or "").strip()
                        catalogue.skips.append(
                            Skip(path.name, row, patient, abnormality, "bad_row", parsed)
                        )
                    else:
                        catalogue.lesions.append(parsed)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise MammoError(f"cannot read {path} ({exc})") from exc
    _resolve_overlap(catalogue, patient_overlap)
    return catalogue


def _resolve_overlap(catalogue: Catalogue, policy: str) -> None:
    splits: dict[str, set[str]] = {}
    for lesion in catalogue.lesions:
        splits.setdefault(lesion.patient_id, set()).add(lesion.split)
    both = sorted(patient for patient, seen in splits.items() if len(seen) > 1)
    catalogue.overlap_patients = both
    if not both:
        return
    if policy == "error":
        raise MammoError(
            f"{len(both)} patient(s) appear in both the train and the test CSVs "
            f"({', '.join(both[:5])}{', ...' if len(both) > 5 else ''}); set "
            "prepare.patient_overlap=drop_train or move_to_test"
        )
    kept = []
    for lesion in catalogue.lesions:
        if lesion.patient_id in both and lesion.split == "train":
            if policy == "drop_train":
                catalogue.skips.append(
                    _skip(lesion, "patient_in_both_splits", "patient also in the test CSVs")
                )
                continue
            lesion = replace(lesion, split="test")
        kept.append(lesion)
    catalogue.lesions = kept


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
    from pydicom.errors import InvalidDicomError

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
        except (InvalidDicomError, OSError, AttributeError, ValueError, TypeError) as exc:
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


def mask_box(mask: np.ndarray) -> Box | None:
    """Bounding box of a binary mask's foreground (its larger value), or None if empty."""
    low, high = mask.min(), mask.max()
    if low == high or not np.all((mask == low) | (mask == high)):
        return None
    rows = np.flatnonzero((mask == high).any(axis=1))
    cols = np.flatnonzero((mask == high).any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def find_baseline(
    image: np.ndarray,
    lesion: Box,
    lesion_boxes: Sequence[Box],
    breast_level: float,
    breast_fraction: float,
) -> tuple[str, Box] | str:
    """The first valid baseline box next to ``lesion`` (left, right, above, below).

    Valid: inside the image, overlapping none of ``lesion_boxes`` (every lesion of the
    image) and with at least ``breast_fraction`` of its pixels above ``breast_level``
    (pixel value, the breast threshold). Returns (side, box), or why none is valid.
    """
    top, left, bottom, right = lesion
    height, width = bottom - top, right - left
    candidates = {
        "left": (top, left - width, bottom, left),
        "right": (top, right, bottom, right + width),
        "above": (top - height, left, top, right),
        "below": (bottom, left, bottom + height, right),
    }
    reasons = []
    for side in BASELINE_SIDES:
        box = candidates[side]
        if box[0] < 0 or box[1] < 0 or box[2] > image.shape[0] or box[3] > image.shape[1]:
            reasons.append(f"{side}: outside the image")
            continue
        if any(_overlaps(box, other) for other in lesion_boxes):
            reasons.append(f"{side}: overlaps a lesion")
            continue
        inside = float(np.mean(image[box[0] : box[2], box[1] : box[3]] > breast_level))
        if inside < breast_fraction:
            reasons.append(f"{side}: {inside:.0%} breast < {breast_fraction:.0%}")
            continue
        return side, box
    return "; ".join(reasons)


def resize(patch: np.ndarray, size: int, method: str = "nearest") -> np.ndarray:
    """Resize a 2-D uint16 patch to (size, size): ``nearest`` or ``bilinear`` (numpy only)."""
    height, width = patch.shape
    out = np.arange(size)
    if method == "nearest":  # the source pixel under each output pixel's centre (exact ints)
        rows = (2 * out + 1) * height // (2 * size)
        cols = (2 * out + 1) * width // (2 * size)
        return patch[np.ix_(rows, cols)]
    if method != "bilinear":
        raise MammoError(f"prepare.resize={method}; expected one of {', '.join(RESIZE_METHODS)}")
    # output pixel centres in source pixel coordinates
    ys = (out + 0.5) * height / size - 0.5
    xs = (out + 0.5) * width / size - 0.5
    ys, xs = np.clip(ys, 0, height - 1), np.clip(xs, 0, width - 1)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    p = patch.astype(np.float64)
    top = p[np.ix_(y0, x0)] * (1 - wx) + p[np.ix_(y0, x1)] * wx
    bottom = p[np.ix_(y1, x0)] * (1 - wx) + p[np.ix_(y1, x1)] * wx
    return np.rint(top * (1 - wy) + bottom * wy).astype(np.uint16)


@dataclass(frozen=True)
class ImageJob:
    """One full image and its lesions: the unit of work (and of resuming)."""

    image_files: tuple[DicomFile, ...]
    lesions: tuple[Lesion, ...]
    roi_files: tuple[tuple[DicomFile, ...], ...]  # per lesion: files of its ROI series

    def key(self, options: PatchOptions) -> str:
        """Digest of everything the result depends on (files incl. size/mtime, options)."""
        payload = json.dumps(
            [
                _CACHE_VERSION,
                asdict(options),
                [asdict(f) for f in self.image_files],
                [asdict(lesion) for lesion in self.lesions],
                [[asdict(f) for f in files] for files in self.roi_files],
            ],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass
class ImageResult:
    """Pairs cut from one full image, and its rows that were skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)  # manifest rows, per pair
    patches: np.ndarray | None = None  # (pairs, 2, size, size) uint16: baseline, abnormality
    skips: list[Skip] = field(default_factory=list)


def _find_mask(
    files: Sequence[DicomFile], shape: tuple[int, int]
) -> tuple[str, Box] | tuple[None, tuple[str, str]]:
    """The binary, full-image-sized file among ``files``: (path, box) or (None, why)."""
    if not files:
        return None, ("mask_not_found", "the row's ROI series is not in the source tree")
    same_size = [f for f in files if f.shape == shape]
    if not same_size:
        sizes = ", ".join(f"{f.shape[0]}x{f.shape[1]}" for f in files)
        return None, (
            "mask_not_found",
            f"no file of the full image's size {shape[0]}x{shape[1]} in the ROI series ({sizes})",
        )
    why = ("mask_not_binary", "the full-size file of the ROI series is not a binary mask")
    for candidate in same_size:
        try:
            pixels, _ = read_pixels(candidate.path)
        except ValueError as exc:
            why = ("mask_unreadable", str(exc))
            continue
        box = mask_box(pixels)
        if box is not None:
            return candidate.path, box
        if pixels.min() == pixels.max():
            why = ("mask_empty", "the ROI mask has no foreground")
    return None, why


def process_image(job: ImageJob, options: PatchOptions, source: str) -> ImageResult:
    """Cut the (baseline, abnormality) pair of every lesion of one full image."""
    result = ImageResult()
    if not job.image_files:
        result.skips = [
            _skip(x, "image_not_found", "full image not in the source tree") for x in job.lesions
        ]
        return result
    try:
        image_file = job.image_files[0]
        image, full_scale = read_pixels(image_file.path)
    except ValueError as exc:
        result.skips = [_skip(x, "image_unreadable", str(exc)) for x in job.lesions]
        return result
    masks: list[tuple[Lesion, str, Box]] = []
    for lesion, files in zip(job.lesions, job.roi_files, strict=True):
        path, found = _find_mask(files, image.shape)
        if path is None:
            result.skips.append(_skip(lesion, *found))
        else:
            masks.append((lesion, path, found))
    boxes = [box for _, _, box in masks]
    patches = []
    for lesion, mask_path, box in masks:
        found = find_baseline(
            image, box, boxes, options.breast_level * full_scale, options.breast_fraction
        )
        if isinstance(found, str):
            result.skips.append(_skip(lesion, "no_baseline", found))
            continue
        side, base = found
        pair = [
            resize(image[b[0] : b[2], b[1] : b[3]], options.patch_size, options.resize)
            for b in (base, box)
        ]
        patches.append(np.stack(pair))
        result.records.append(
            {
                "split": lesion.split,
                "csv_split": lesion.csv_split,
                "patient_id": lesion.patient_id,
                "side": lesion.side,
                "view": lesion.view,
                "abnormality_id": lesion.abnormality_id,
                "abnormality_type": lesion.abnormality_type,
                "pathology": lesion.pathology,
                "label": lesion.label,
                "breast_density": lesion.density,
                "lesion_box": " ".join(map(str, box)),
                "baseline_box": " ".join(map(str, base)),
                "baseline_side": side,
                "image_file": os.path.relpath(image_file.path, source),
                "mask_file": os.path.relpath(mask_path, source),
                "csv_file": lesion.csv_file,
                "csv_row": lesion.row,
            }
        )
    if patches:
        result.patches = np.stack(patches)
    return result


def plan_jobs(catalogue: Catalogue, index: dict[Uids, list[DicomFile]]) -> list[ImageJob]:
    """Group lesions by full image (in CSV order) with the files their UIDs point to."""
    by_image: dict[Uids, list[Lesion]] = {}
    for lesion in catalogue.lesions:
        by_image.setdefault(lesion.image_uids, []).append(lesion)
    jobs = []
    for uids, lesions in by_image.items():
        roi = tuple(
            tuple(f for ids in lesion.roi_uids for f in index.get(ids, ())) for lesion in lesions
        )
        jobs.append(ImageJob(tuple(index.get(uids, ())), tuple(lesions), roi))
    return jobs


def _save_result(path: Path, result: ImageResult) -> None:
    meta = json.dumps({"records": result.records, "skips": [asdict(s) for s in result.skips]})
    arrays = {"meta": np.frombuffer(meta.encode(), dtype=np.uint8)}
    if result.patches is not None:
        arrays["patches"] = result.patches
    write_with(path, lambda tmp: np.savez(tmp, **arrays))


def _load_result(path: Path) -> ImageResult | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            patches = np.array(data["patches"]) if "patches" in data else None
    except (OSError, ValueError, KeyError, EOFError):
        return None  # a stale or broken cache entry is simply recomputed
    return ImageResult(meta["records"], patches, [Skip(**s) for s in meta["skips"]])


def run_jobs(
    jobs: Sequence[ImageJob],
    options: PatchOptions,
    source: Path,
    cache: Path,
    workers: int = 1,
    progress: bool = True,
) -> tuple[list[ImageResult], int]:
    """Process ``jobs`` (``workers`` processes), reusing cached results; in job order.

    Returns the results and how many came from the cache.
    """
    from rich.progress import Progress

    cache.mkdir(parents=True, exist_ok=True)
    results: list[ImageResult | None] = []
    todo = []
    for number, job in enumerate(jobs):
        cached = _load_result(cache / f"{job.key(options)}.npz")
        results.append(cached)
        if cached is None:
            todo.append(number)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("mammo prepare: full images", total=len(jobs))
        bar.advance(task, len(jobs) - len(todo))

        def finished(number: int, result: ImageResult) -> None:
            _save_result(cache / f"{jobs[number].key(options)}.npz", result)
            results[number] = result
            bar.advance(task)

        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                outputs = pool.map(
                    process_image, [jobs[n] for n in todo], repeat(options), repeat(str(source))
                )
                for number, result in zip(todo, outputs, strict=True):
                    finished(number, result)
        else:
            for number in todo:
                finished(number, process_image(jobs[number], options, str(source)))
    return [r for r in results if r is not None], len(jobs) - len(todo)


MANIFEST_COLUMNS = (
    "split",
    "index",
    "patient_id",
    "label",
    "abnormality_type",
    "pathology",
    "abnormality_id",
    "side",
    "view",
    "breast_density",
    "lesion_box",
    "baseline_box",
    "baseline_side",
    "image_file",
    "mask_file",
    "csv_file",
    "csv_row",
    "csv_split",
)


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".write-test") as probe:
            probe.write_bytes(b"")
        (out / ".write-test").unlink()
    except OSError as exc:
        raise MammoError(f"cannot write to out={out} ({exc.strerror or exc})") from exc


def prepare(
    source: Path,
    csv_dir: Path,
    out: Path,
    options: PatchOptions,
    patient_overlap: str = "drop_train",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the course-format folder ``out`` from a CBIS-DDSM download; return the summary.

    Writes the four course .npy files, ``train_groups.npy`` (patient number per training
    patch, for patient-grouped validation splits), ``manifest.csv`` and ``summary.json``.
    """
    if options.resize not in RESIZE_METHODS:
        raise MammoError(
            f"prepare.resize={options.resize}; expected one of {', '.join(RESIZE_METHODS)}"
        )
    if (
        options.patch_size < 1
        or not 0 < options.breast_fraction <= 1
        or not 0 <= options.breast_level < 1
    ):
        raise MammoError(
            "expected prepare.patch_size >= 1, 0 < prepare.breast_fraction <= 1 and "
            "0 <= prepare.breast_level < 1"
        )
    catalogue = read_case_csvs(csv_dir, patient_overlap)
    _check_out(out)
    index, unreadable = index_dicoms(source)
    jobs = plan_jobs(catalogue, index)
    results, reused = run_jobs(jobs, options, source, out / CACHE_DIR, workers, progress)

    skips = catalogue.skips + [skip for result in results for skip in result.skips]
    skips.sort(key=lambda s: (s.csv_file, s.row))
    pairs = sorted(
        (
            (record, result.patches[i])
            for result in results
            for i, record in enumerate(result.records)
        ),
        key=lambda item: (item[0]["split"], item[0]["csv_file"], item[0]["csv_row"]),
    )
    manifest = io.StringIO()
    writer = csv.DictWriter(manifest, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    counts: dict[str, dict[str, int]] = {}
    size = options.patch_size
    for split in SPLIT_FILES:
        chosen = [(record, patch) for record, patch in pairs if record["split"] == split]
        tensor = np.zeros((2 * len(chosen), size, size), dtype=np.uint16)
        labels = np.zeros(2 * len(chosen), dtype=np.int64)
        for i, (record, patch) in enumerate(chosen):
            tensor[2 * i : 2 * i + 2] = patch
            labels[2 * i + 1] = record["label"]
            writer.writerow({**record, "index": 2 * i + 1})
        tensor_name, labels_name = SPLIT_FILES[split]
        write_with(out / tensor_name, lambda tmp, t=tensor: np.save(tmp, t))
        write_with(out / labels_name, lambda tmp, y=labels: np.save(tmp, y))
        if split == "train":
            patients = sorted({record["patient_id"] for record, _ in chosen})
            number = {patient: n for n, patient in enumerate(patients)}
            groups = np.repeat([number[r["patient_id"]] for r, _ in chosen], 2).astype(np.int64)
            write_with(out / "train_groups.npy", lambda tmp, g=groups: np.save(tmp, g))
        found = Counter(int(label) for label in labels)
        counts[split] = {name: found.get(n, 0) for n, name in enumerate(RAW_LABELS)}
    write_text(out / "manifest.csv", manifest.getvalue())
    summary = {
        "options": asdict(options),
        "patient_overlap": {"policy": patient_overlap, "patients": catalogue.overlap_patients},
        "rows": len(catalogue.lesions) + len(catalogue.skips),
        "pairs": {split: counts[split]["baseline"] for split in SPLIT_FILES},
        "counts": counts,
        "skipped": dict(sorted(Counter(s.reason for s in skips).items())),
        "skipped_rows": [asdict(s) for s in skips],
        "unreadable_dicoms": [
            {"file": os.path.relpath(path, source), "error": error} for path, error in unreadable
        ],
        "full_images": len(jobs),
    }
    write_json(out / "summary.json", summary)
    summary["reused_from_cache"] = reused
    return summary
