"""Bad files given to the real CLI: undecodable images among good ones (predict, explain),
a model of another shape (evaluate), damaged run folders (report). Each checks the exit
status, the one-line message and what is left on disk. One tiny 1-epoch scratch run."""

from __future__ import annotations

import csv
import json
import math
import shutil
import struct
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.helpers import (
    assert_user_error,
    run_copy_with_model,
    run_mammo,
    write_dicom,
)

# -- undecodable files among good ones: error rows, the rest predicted -----------------


def write_png_bomb(path: Path, side: int) -> None:
    """A valid 1-bit PNG of ``side`` x ``side`` black pixels: a few kB on disk that
    decompress to ``side``**2 pixels (a decompression bomb once ``side`` is large)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = bytes(1 + math.ceil(side / 8))  # filter byte 0, then the row's packed bits
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


#: bad file -> a fragment of its error row
BAD_FILES = {
    "bomb.png": "decompression bomb",  # over twice Pillow's limit: Pillow refuses it
    "bomb_warned.png": "decompression bomb",  # over the limit: Pillow only warns
    "text.png": "cannot identify image file",
    "truncated.dcm": "cannot decode truncated.dcm",
}


@pytest.fixture(scope="module")
def mixed_folder(tiny_course, tmp_path_factory) -> tuple[Path, list[str]]:
    """Three good PNG patches next to the bad files of :data:`BAD_FILES`."""
    folder = tmp_path_factory.mktemp("mixed")
    images = np.load(tiny_course / "public_test_tensor.npy")
    good = []
    for i in range(3):
        name = f"good_{i}.png"
        Image.fromarray(images[i]).save(folder / name)
        good.append(name)
    limit = Image.MAX_IMAGE_PIXELS
    write_png_bomb(folder / "bomb.png", math.isqrt(2 * limit) + 1)
    write_png_bomb(folder / "bomb_warned.png", math.isqrt(limit) + 1)
    (folder / "text.png").write_text("a text file named like an image\n")
    write_dicom(folder / "whole.dcm", images[0])
    whole = (folder / "whole.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(whole[: len(whole) // 2])
    (folder / "whole.dcm").unlink()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000  # cheap bombs
    return folder, good


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_predict_keeps_the_good_files_of_a_folder_with_bad_ones(
    scratch_run, mixed_folder, tmp_path
):
    folder, good = mixed_folder
    out = tmp_path / "predicted"
    result = run_mammo(
        "predict",
        f"run={scratch_run}",
        f"input={folder}",
        "predict.progress=false",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "DecompressionBombWarning" not in result.stderr
    rows = _rows(out / "predictions.csv")
    assert set(rows) == {*good, *BAD_FILES}
    for name, reason in BAD_FILES.items():
        assert rows[name]["predicted"] == "" and reason in rows[name]["error"], rows[name]
    for name in good:
        assert rows[name]["error"] == "" and rows[name]["predicted"] in ("mass", "calcification")
        probs = [float(rows[name][f"prob_{c}"]) for c in ("mass", "calcification")]
        assert sum(probs) == pytest.approx(1.0)
    assert not (out / "status.json").exists()


def test_explain_keeps_the_good_files_of_a_folder_with_bad_ones(
    scratch_run, mixed_folder, tmp_path
):
    folder, good = mixed_folder
    out = tmp_path / "explained"
    result = run_mammo(
        "explain", f"run={scratch_run}", f"input={folder}", f"hydra.run.dir={out}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = _rows(out / "explanations.csv")
    assert set(rows) == {*good, *BAD_FILES}
    for name, reason in BAD_FILES.items():
        assert rows[name]["overlay"] == "" and reason in rows[name]["error"], rows[name]
    for name in good:
        assert rows[name]["error"] == "" and (out / rows[name]["overlay"]).is_file()
    assert len(list((out / "gradcam").glob("*.png"))) == len(good)


# -- a model that does not fit the task: evaluate refuses it, writes no metrics ---------


def _model(input_shape: tuple[int, ...], outputs: tuple[int, ...]) -> keras.Model:
    inputs = keras.Input(input_shape)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    heads = [keras.layers.Dense(n, activation="softmax")(pooled) for n in outputs]
    return keras.Model(inputs, heads if len(heads) > 1 else heads[0])


@pytest.mark.parametrize(
    ("input_shape", "outputs", "fragments"),
    [
        ((64, 64, 1), (2,), ["takes inputs [(64, 64, 1)]", "expected [(150, 150, 1)]"]),
        ((150, 150, 3), (2,), ["takes inputs [(150, 150, 3)]", "expected [(150, 150, 1)]"]),
        ((150, 150, 1), (3,), ["1 output(s) of shape (3,)", "expected one output of shape (2,)"]),
        ((150, 150, 1), (2, 2), ["2 output(s) of shape (2,), (2,)", "expected one output"]),
    ],
    ids=["64x64", "3-channels", "3-classes", "2-outputs"],
)
def test_evaluate_refuses_a_model_of_another_shape(
    scratch_run, input_shape, outputs, fragments, tmp_path
):
    foreign = run_copy_with_model(
        scratch_run, tmp_path / "foreign", lambda path: _model(input_shape, outputs).save(path)
    )
    out = tmp_path / "evaluated"
    result = run_mammo("evaluate", f"run={foreign}", f"hydra.run.dir={out}", cwd=tmp_path)
    assert_user_error(result, f"{foreign / 'model.keras'}: the model ", *fragments)
    assert not (out / "metrics.json").exists()
    assert not (out / "test_predictions.csv").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and fragments[0] in status["error"]


# -- damaged run folders: the report lists them as unreadable, with the reason ---------


def test_report_lists_damaged_runs_as_unreadable(scratch_run, tmp_path):
    sweep = tmp_path / "sweep"
    for job in range(5):
        shutil.copytree(scratch_run, sweep / str(job), ignore=shutil.ignore_patterns("*.keras"))
    (sweep / "1" / "metrics.json").write_text('{"accuracy": 0.9, "auc')  # truncated
    (sweep / "2" / "metrics.json").write_text("[0.9, 0.8]")  # not an object
    (sweep / "3" / ".hydra" / "overrides.yaml").write_text('- task=2.1\n- "unclosed\n')
    (sweep / "4" / "provenance.json").write_text('{"command": "tr')
    result = run_mammo("report", str(sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with (sweep / "report.csv").open(newline="") as handle:
        status = {row["run"]: row["status"] for row in csv.DictReader(handle)}
    assert status == {
        "0": "ok",
        "1": "unreadable",
        "2": "unreadable",
        "3": "unreadable",
        "4": "unreadable",
    }
    notes = (sweep / "report.md").read_text().split("\n\n")[-1].splitlines()
    expected = {
        "1": "metrics.json is damaged or unreadable (",
        "2": "metrics.json is damaged (expected a JSON object, found list)",
        "3": "overrides.yaml is damaged (not valid YAML: found unexpected end of stream",
        "4": "provenance.json is damaged or unreadable (",
    }
    for job, fragment in expected.items():
        (note,) = [line for line in notes if line.startswith(f"{job}: ")]
        assert fragment in note, note
    metrics = json.loads((scratch_run / "metrics.json").read_text())
    assert f"{metrics['accuracy']:.2f}" in (sweep / "report.md").read_text()
