"""Cutting the (baseline, abnormality) patches of one full mammogram.

Abnormality = the full image cut by the ROI mask's bounding box. The mask is told from
the cropped image by content: of the files in the row's ROI/crop series, the mask is the
one that has the full image's size and holds only two values (the column it is listed
in is not trusted: the calc CSVs swap them).

Baseline = a box of the same size right next to the lesion, tried left, right, above,
below (first valid wins): inside the image, overlapping no lesion box of the same image,
and mostly breast: at least ``breast_fraction`` (0.9) of its pixels above
``breast_level`` (0.05) of the image's full scale (2**BitsStored - 1). The background of
a scanned film sits near 0, the breast well above 5 % of full scale.

Both patches are resized to ``patch_size`` (150) with :func:`resize` (nearest) and kept
as uint16; MONOCHROME1 images are inverted first so that tissue is bright. A lesion that
cannot be cut (image or mask missing or unreadable, no room for a baseline) becomes a
:class:`~mammo_cli.data.cbis_ddsm.catalogue.Skip` with its reason, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mammo_cli.data.cbis_ddsm.catalogue import Lesion, Skip
from mammo_cli.data.cbis_ddsm.dicom import DicomFile, read_pixels
from mammo_cli.errors import MammoError

#: the order in which baseline positions are tried
BASELINE_SIDES = ("left", "right", "above", "below")
RESIZE_METHODS = ("nearest", "bilinear")

Box = tuple[int, int, int, int]  # (top, left, bottom, right), bottom/right exclusive


@dataclass(frozen=True)
class PatchOptions:
    """How patches are cut and resized (the course's values are the defaults)."""

    patch_size: int = 150
    resize: str = "nearest"
    breast_level: float = 0.05
    breast_fraction: float = 0.9


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
            x.skipped("image_not_found", "full image not in the source tree") for x in job.lesions
        ]
        return result
    try:
        image_file = job.image_files[0]
        image, full_scale = read_pixels(image_file.path)
    except ValueError as exc:
        result.skips = [x.skipped("image_unreadable", str(exc)) for x in job.lesions]
        return result
    masks: list[tuple[Lesion, str, Box]] = []
    for lesion, files in zip(job.lesions, job.roi_files, strict=True):
        path, found = _find_mask(files, image.shape)
        if path is None:
            result.skips.append(lesion.skipped(*found))
        else:
            masks.append((lesion, path, found))
    boxes = [box for _, _, box in masks]
    patches = []
    for lesion, mask_path, box in masks:
        found = find_baseline(
            image, box, boxes, options.breast_level * full_scale, options.breast_fraction
        )
        if isinstance(found, str):
            result.skips.append(lesion.skipped("no_baseline", found))
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
