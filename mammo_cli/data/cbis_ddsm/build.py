"""Building a course folder: plan one job per full image, run the jobs, write the files.

Each full image's result is cached under ``<out>/.prepare-cache`` (keyed by its files'
sizes and times and the patch options), so a re-run resumes and a run with
``workers > 1`` gives the same bytes as a serial one. Outputs are deterministic: the
pairs are ordered by split, CSV file and row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from mammo_cli.data.cbis_ddsm.catalogue import Catalogue, Lesion, Skip, read_case_csvs
from mammo_cli.data.cbis_ddsm.dicom import DicomFile, Uids, index_dicoms
from mammo_cli.data.cbis_ddsm.patches import (
    RESIZE_METHODS,
    ImageJob,
    ImageResult,
    PatchOptions,
    process_image,
)
from mammo_cli.data.course import GROUPS_FILE, RAW_LABELS, SPLIT_FILES
from mammo_cli.errors import MammoError
from mammo_cli.files import atomic_path, write_json, write_text, write_with

log = logging.getLogger(__name__)

CACHE_DIR = ".prepare-cache"
_CACHE_VERSION = 1
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


def cache_key(job: ImageJob, options: PatchOptions) -> str:
    """Digest of everything a job's result depends on (files incl. size/mtime, options)."""
    payload = json.dumps(
        [
            _CACHE_VERSION,
            asdict(options),
            [asdict(f) for f in job.image_files],
            [asdict(lesion) for lesion in job.lesions],
            [[asdict(f) for f in files] for files in job.roi_files],
        ],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


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
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
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
    keys = [cache_key(job, options) for job in jobs]
    results = [_load_result(cache / f"{key}.npz") for key in keys]
    todo = [number for number, result in enumerate(results) if result is None]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("mammo prepare: full images", total=len(jobs))
        bar.advance(task, len(jobs) - len(todo))

        def finished(number: int, result: ImageResult) -> None:
            _save_result(cache / f"{keys[number]}.npz", result)
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


def _check_options(options: PatchOptions) -> None:
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


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".write-test") as probe:
            probe.write_bytes(b"")
        (out / ".write-test").unlink()
    except OSError as exc:
        raise MammoError(f"cannot write to out={out} ({exc.strerror or exc})") from exc


def _no_pairs(rows: int, skips: Sequence[Skip]) -> MammoError:
    """The refusal of a build that cut no pair: rows read, skip reasons and one example."""
    if not skips:
        return MammoError("no pair to write: the CSV files hold no rows")
    reasons = Counter(skip.reason for skip in skips)
    counted = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    example = next(skip for skip in skips if skip.reason == reasons.most_common(1)[0][0])
    detail = " ".join(example.detail.split())  # one line, whatever the library said
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return MammoError(
        f"no baseline/abnormality pair could be cut from the {rows} CSV row(s) read "
        f"(skipped: {counted}; e.g. {example.csv_file} row {example.row}: {detail}); "
        "no course file written, every skipped row is listed in the run's prepare.log"
    )


def _write_course(
    out: Path, pairs: Sequence[tuple[dict[str, Any], np.ndarray]], size: int
) -> dict[str, dict[str, int]]:
    """Write the course .npy files, ``train_groups.npy`` and ``manifest.csv``.

    ``pairs`` are (manifest record, (2, size, size) patches) in output order. Returns the
    count of each course label per split.
    """
    manifest = io.StringIO()
    writer = csv.DictWriter(manifest, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    counts: dict[str, dict[str, int]] = {}
    for split, (tensor_name, labels_name) in SPLIT_FILES.items():
        chosen = [(record, patch) for record, patch in pairs if record["split"] == split]
        tensor = np.zeros((2 * len(chosen), size, size), dtype=np.uint16)
        labels = np.zeros(2 * len(chosen), dtype=np.int64)
        for i, (record, patch) in enumerate(chosen):
            tensor[2 * i : 2 * i + 2] = patch
            labels[2 * i + 1] = record["label"]
            writer.writerow({**record, "index": 2 * i + 1})
        write_with(out / tensor_name, lambda tmp, t=tensor: np.save(tmp, t))
        write_with(out / labels_name, lambda tmp, y=labels: np.save(tmp, y))
        if split == "train":
            patients = sorted({record["patient_id"] for record, _ in chosen})
            number = {patient: n for n, patient in enumerate(patients)}
            groups = np.repeat([number[r["patient_id"]] for r, _ in chosen], 2).astype(np.int64)
            write_with(out / GROUPS_FILE, lambda tmp, g=groups: np.save(tmp, g))
        found = Counter(int(label) for label in labels)
        counts[split] = {name: found.get(n, 0) for n, name in enumerate(RAW_LABELS)}
    write_text(out / "manifest.csv", manifest.getvalue())
    return counts


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
    Every skipped row is logged with its reason. A build that cuts no pair at all is
    refused (:class:`MammoError`) and writes none of these files.
    """
    _check_options(options)
    catalogue = read_case_csvs(csv_dir, patient_overlap)
    _check_out(out)
    index, unreadable = index_dicoms(source)
    jobs = plan_jobs(catalogue, index)
    results, reused = run_jobs(jobs, options, source, out / CACHE_DIR, workers, progress)

    skips = catalogue.skips + [skip for result in results for skip in result.skips]
    skips.sort(key=lambda s: (s.csv_file, s.row))
    for skip in skips:
        log.info("skipped %s row %d (%s): %s", skip.csv_file, skip.row, skip.reason, skip.detail)
    rows = len(catalogue.lesions) + len(catalogue.skips)
    pairs = sorted(
        (
            (record, result.patches[i])
            for result in results
            for i, record in enumerate(result.records)
        ),
        key=lambda item: (item[0]["split"], item[0]["csv_file"], item[0]["csv_row"]),
    )
    if not pairs:
        raise _no_pairs(rows, skips)
    counts = _write_course(out, pairs, options.patch_size)
    summary = {
        "options": asdict(options),
        "patient_overlap": {"policy": patient_overlap, "patients": catalogue.overlap_patients},
        "rows": rows,
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
