"""The CBIS-DDSM description CSVs: one :class:`Lesion` per usable row.

Every ``*_case_description_{train,test}_set.csv`` file of a folder is read (both
spellings of the density column; quoted paths that end in a newline). Label: mass 1/2,
calcification 3/4, benign/malignant by ``pathology`` (``BENIGN_WITHOUT_CALLBACK`` counts
as benign). The split is the CSV's (train/test). The image and ROI paths are kept as the
(StudyInstanceUID, SeriesInstanceUID) they name, since a TCIA download uses other folder
names than the CSVs.

A patient whose rows fall in both splits (31 in the real CSVs, via the mass and calc
files) is resolved by the patient-overlap policy: ``drop_train`` (the official test rows
stay whole, that patient's training rows are skipped), ``move_to_test`` or ``error``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mammo_cli.data.cbis_ddsm.dicom import Uids
from mammo_cli.errors import MammoError

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
OVERLAP_POLICIES = ("drop_train", "move_to_test", "error")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


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

    def skipped(self, reason: str, detail: str) -> Skip:
        """This row as a :class:`Skip` with ``reason`` (a short code) and ``detail``."""
        return Skip(self.csv_file, self.row, self.patient_id, self.abnormality_id, reason, detail)


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
                reader = csv.DictReader(handle, restval="")
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
            raise MammoError(f"{path}: cannot read it ({exc})") from exc
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
                    lesion.skipped("patient_in_both_splits", "patient also in the test CSVs")
                )
                continue
            lesion = replace(lesion, split="test")
        kept.append(lesion)
    catalogue.lesions = kept
