"""`mammo predict`, `mammo explain` and evaluate's ROC/operating point: real TensorFlow,
one tiny 1-epoch scratch run on the tiny course folder; the session's tiny siamese run
and ensemble (tests/conftest.py); an untrained VGG16 (random weights) for Grad-CAM."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_curve

from mammo_cli.data.course import to_model_input
from mammo_cli.errors import MammoError
from mammo_cli.evaluation.gradcam import build_gradcam
from mammo_cli.evaluation.metrics import operating_point
from mammo_cli.inference.explain import explain_items, most_confident
from mammo_cli.inference.inputs import collect_items
from mammo_cli.inference.predictions import decide
from mammo_cli.models.pretrained import build_pretrained
from mammo_cli.runs.folder import RunFolder
from tests.helpers import assert_user_error, read_metrics, run_folders, run_mammo, write_dicom

CLASSES = ("mass", "calcification")  # task 2.1; course labels 1, 2 -> mass, 3, 4 -> calc


def _predict(run: Path, source: Path, cwd: Path, *extra: str) -> list[dict[str, str]]:
    result = run_mammo(
        "predict", f"run={run}", f"input={source}", "predict.progress=false", *extra, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert "errors" in result.stdout  # the rich summary table
    (out,) = run_folders(cwd / "outputs" / "predict")
    with (out / "predictions.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tensor_predictions(scratch_run, tiny_course, tmp_path_factory) -> list[dict[str, str]]:
    cwd = tmp_path_factory.mktemp("predict_tensor")
    return _predict(scratch_run, tiny_course / "public_test_tensor.npy", cwd)


@pytest.fixture(scope="module")
def evaluated(scratch_run, tmp_path_factory) -> Path:
    """``mammo evaluate`` of the run with a 0.9 target sensitivity."""
    cwd = tmp_path_factory.mktemp("predict_evaluate")
    result = run_mammo("evaluate", f"run={scratch_run}", "evaluate.target_sensitivity=0.9", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "operating point" in result.stdout
    (out,) = run_folders(cwd / "outputs" / "evaluate")
    return out


def _abnormalities(tiny_course: Path) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the test tensor's abnormality patches and their task 2.1 classes."""
    labels = np.load(tiny_course / "public_test_labels.npy")
    index = np.flatnonzero(labels > 0)
    return index, (labels[index] >= 3).astype(int)


def test_predict_on_the_test_tensor_matches_evaluate(tensor_predictions, evaluated, tiny_course):
    rows = tensor_predictions
    assert len(rows) == len(np.load(tiny_course / "public_test_labels.npy"))
    assert [row["id"] for row in rows] == [str(i) for i in range(len(rows))]
    assert all(row["error"] == "" for row in rows)
    index, truth = _abnormalities(tiny_course)
    predicted = np.array([CLASSES.index(rows[i]["predicted"]) for i in index])
    assert float(np.mean(predicted == truth)) == read_metrics(evaluated)["accuracy"]
    probs = np.array([[float(rows[i][f"prob_{c}"]) for c in CLASSES] for i in index])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)


def test_operating_point_is_the_roc_curve_threshold(tensor_predictions, evaluated, tiny_course):
    assert (evaluated / "roc_curve.png").is_file()
    point = read_metrics(evaluated)["operating_point"]
    index, truth = _abnormalities(tiny_course)
    scores = np.array([float(tensor_predictions[i]["prob_calcification"]) for i in index])
    fpr, tpr, thresholds = roc_curve(truth, scores)
    first = int(np.flatnonzero(tpr >= 0.9)[0])
    assert point["positive_class"] == 1 and point["target_sensitivity"] == 0.9
    assert point["threshold"] == pytest.approx(min(thresholds[first], 1.0), rel=1e-5)
    assert point["sensitivity"] == pytest.approx(tpr[first])
    assert point["specificity"] == pytest.approx(1 - fpr[first])
    # the threshold does what it says on the same scores
    assert np.mean(scores[truth == 1] >= point["threshold"]) >= 0.9


def test_operating_point_against_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    for target in (0.5, 0.9, 1.0):
        point = operating_point(labels, scores, 1, target)
        fpr, tpr, thresholds = roc_curve(labels, scores)
        first = int(np.flatnonzero(tpr >= target)[0])
        assert point["threshold"] == thresholds[first]
        assert point["specificity"] == 1 - fpr[first]
        called = scores >= point["threshold"]
        assert np.mean(called[labels == 1]) == point["sensitivity"] >= target


def test_threshold_decides_the_binary_class():
    probs = np.array([0.7, 0.3])
    assert decide(probs, 1, 0.5) == 0
    assert decide(probs, 1, 0.25) == 1
    assert decide(np.array([0.2, 0.5, 0.3]), None, 0.5) == 1


def _write_patch_images(tiny_course: Path, folder: Path) -> dict[str, int]:
    """16-bit PNG/TIFF copies of some test patches (one upscaled), plus a corrupt file."""
    images = np.load(tiny_course / "public_test_tensor.npy")
    folder.mkdir()
    written = {"a.png": 1, "b.tif": 3, "c.png": 5}
    for name, index in written.items():
        Image.fromarray(images[index]).save(folder / name)
    big = np.repeat(np.repeat(images[7], 2, axis=0), 2, axis=1)  # 300x300 -> nearest 150
    Image.fromarray(big).save(folder / "d_big.png")
    written["d_big.png"] = 7
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (folder / "notes.txt").write_text("ignored: not an image")
    return written


def test_png_folder_with_a_corrupt_file(scratch_run, tiny_course, tensor_predictions, tmp_path):
    written = _write_patch_images(tiny_course, tmp_path / "pngs")
    rows = {row["id"]: row for row in _predict(scratch_run, tmp_path / "pngs", tmp_path)}
    assert set(rows) == {*written, "broken.png"}
    assert rows["broken.png"]["predicted"] == "" and "broken.png" in rows["broken.png"]["error"]
    for name, index in written.items():
        assert rows[name]["error"] == ""
        assert rows[name]["predicted"] == tensor_predictions[index]["predicted"]
        for c in CLASSES:
            assert float(rows[name][f"prob_{c}"]) == pytest.approx(
                float(tensor_predictions[index][f"prob_{c}"]), abs=1e-5
            )


def test_gradcam_heatmap_has_the_patch_size_and_varies(scratch_run, tiny_course):
    model = keras.models.load_model(scratch_run / "model.keras", safe_mode=True, compile=False)
    cam = build_gradcam(model)
    assert cam.layer == "conv5"
    index, _ = _abnormalities(tiny_course)
    patches = to_model_input(np.load(tiny_course / "public_test_tensor.npy")[index])
    heatmaps, probs = cam.heatmaps(patches)
    assert heatmaps.shape == (len(index), 150, 150)
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    assert all(np.ptp(h) > 0 for h in heatmaps)
    np.testing.assert_allclose(probs, model.predict(patches, verbose=0), rtol=1e-4, atol=1e-6)


def test_gradcam_finds_the_last_conv_of_a_nested_backbone():
    base_in = keras.Input((150, 150, 3))
    x = keras.layers.Conv2D(4, 3, name="block1_conv1")(base_in)
    x = keras.layers.Conv2D(4, 3, strides=4, name="block2_conv1")(x)
    base = keras.Model(base_in, keras.layers.MaxPooling2D(2)(x), name="vgg16")
    patch = keras.Input((150, 150, 1), name="patch")
    rgb = keras.layers.Concatenate(name="to_rgb")([patch, patch, patch])
    x = keras.layers.Flatten(name="flatten")(base(keras.layers.Rescaling(255.0)(rgb)))
    model = keras.Model(patch, keras.layers.Dense(2, activation="softmax")(x))
    cam = build_gradcam(model)
    assert cam.layer == "vgg16/block2_conv1"
    patches = np.random.default_rng(0).random((3, 150, 150, 1)).astype(np.float32)
    heatmaps, probs = cam.heatmaps(patches, classes=np.array([0, 1, 1]))
    assert heatmaps.shape == (3, 150, 150)
    np.testing.assert_allclose(probs, model.predict(patches, verbose=0), rtol=1e-4, atol=1e-6)


def test_explain_writes_overlays_and_a_contact_sheet(scratch_run, tmp_path):
    result = run_mammo("explain", f"run={scratch_run}", "n=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (out,) = run_folders(tmp_path / "outputs" / "explain")
    assert (out / "contact_sheet.png").is_file()
    with (out / "explanations.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert all((out / row["overlay"]).is_file() for row in rows)


def test_most_confident_shows_wrong_then_right_predictions():
    correct = np.array([True, False, True, False, True])
    confidence = np.array([0.9, 0.8, 0.7, 0.95, 0.6])
    assert most_confident(correct, confidence, 4).tolist() == [3, 1, 0, 2]
    assert most_confident(correct, confidence, 1).tolist() == [3]
    # too few right predictions: more wrong ones fill the sheet, and the other way round
    assert most_confident(np.array([False] * 4), confidence[:4], 3).tolist() == [3, 0, 1]
    assert most_confident(~correct, confidence, 5).tolist() == [0, 2, 4, 3, 1]


def test_siamese_runs_take_interleaved_tensors_only(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(MammoError, match="interleaved pairs"):
        collect_items(tmp_path, pairs=True)
    np.save(tmp_path / "odd.npy", np.zeros((3, 150, 150), dtype=np.uint16))
    with pytest.raises(MammoError, match="even number"):
        collect_items(tmp_path / "odd.npy", pairs=True)
    np.save(tmp_path / "pairs.npy", np.zeros((4, 150, 150), dtype=np.uint16))
    (item, _) = collect_items(tmp_path / "pairs.npy", pairs=True)
    abnormality, baseline = item.read()
    assert abnormality.shape == baseline.shape == (150, 150, 1)


def test_predict_refuses_a_run_without_a_model(scratch_run, tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    for name in ("config.yaml", "provenance.json", "metrics.json"):
        (empty / name).write_text((scratch_run / name).read_text())
    result = run_mammo("predict", f"run={empty}", f"input={tmp_path}", cwd=tmp_path)
    assert_user_error(result, "holds no model.keras")


def test_a_tensor_of_the_wrong_shape_is_refused(tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((2, 64, 64), dtype=np.uint8))
    with pytest.raises(MammoError, match=r"small.npy has shape .*expected \(N, 150, 150\)"):
        collect_items(tmp_path / "small.npy", pairs=False)


def test_explain_items_writes_overlays_and_error_rows(scratch_run, tiny_course, tmp_path):
    written = _write_patch_images(tiny_course, tmp_path / "pngs")
    model = RunFolder(scratch_run).load_model()
    items = collect_items(tmp_path / "pngs", pairs=False)
    table = explain_items(model, list(CLASSES), items, 2, tmp_path / "out", progress=False)
    rows = {row["id"]: row for row in csv.DictReader(table.splitlines())}
    assert set(rows) == {*written, "broken.png"}
    assert rows["broken.png"]["overlay"] == "" and rows["broken.png"]["error"]
    for name in written:
        assert (tmp_path / "out" / rows[name]["overlay"]).is_file()


def _pair_input(pair_course: Path) -> tuple[np.ndarray, np.ndarray]:
    """The pair course's test set as the siamese model takes it: (abnormality, baseline)."""
    tensor = np.load(pair_course / "public_test_tensor.npy")
    return to_model_input(tensor[1::2]), to_model_input(tensor[0::2])


def test_gradcam_of_both_siamese_towers(siamese_run, pair_course, tmp_path):
    model = RunFolder(siamese_run).load_model()
    cam = build_gradcam(model)
    assert cam.layer == "tower/vgg16/block5_conv3"
    pair = _pair_input(pair_course)
    (abnormality, baseline), probs = cam.heatmaps(pair)
    for heatmaps in (abnormality, baseline):
        assert heatmaps.shape == (4, 150, 150)
        assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
        assert all(np.ptp(h) > 0 for h in heatmaps)
    assert not np.allclose(abnormality, baseline)  # one heatmap per application of the tower
    np.testing.assert_allclose(probs, model.predict(pair, verbose=0), rtol=1e-4, atol=1e-6)

    items = collect_items(pair_course / "public_test_tensor.npy", pairs=True)
    table = explain_items(model, list(CLASSES), items, 3, tmp_path, progress=False)
    rows = list(csv.DictReader(table.splitlines()))
    assert [row["id"] for row in rows] == ["0", "1", "2", "3"]
    assert all(row["error"] == "" and (tmp_path / row["overlay"]).is_file() for row in rows)
    with Image.open(tmp_path / rows[0]["overlay"]) as overlay:
        assert overlay.width > 1.5 * overlay.height  # abnormality and baseline side by side


def test_explain_a_siamese_run_through_the_cli(siamese_run, tmp_path):
    result = run_mammo("explain", f"run={siamese_run}", "n=3", "progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (out,) = run_folders(tmp_path / "outputs" / "explain")
    assert (out / "contact_sheet.png").is_file()
    with (out / "explanations.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and {row["true"] for row in rows} <= {"mass", "calcification"}
    assert all((out / row["overlay"]).is_file() for row in rows)


def test_explain_a_siamese_run_refuses_single_images(siamese_run, tiny_course, tmp_path):
    _write_patch_images(tiny_course, tmp_path / "pngs")
    result = run_mammo("explain", f"run={siamese_run}", f"input={tmp_path / 'pngs'}", cwd=tmp_path)
    assert_user_error(result, "siamese", "interleaved pairs")


@pytest.mark.parametrize(
    "backbone, layer",
    [("vgg16", "vgg16/block5_conv3"), ("resnet50", "resnet50/conv5_block3_3_conv")],
)
def test_gradcam_on_a_real_keras_applications_backbone(backbone, layer, tiny_course):
    """The nested keras.applications backbone (random weights, frozen as in fe mode).

    With random weights a class may have no positive evidence in a patch (an all-zero
    map after Grad-CAM's ReLU); the two classes' gradients are opposite, so the other
    class's map then shows it."""
    keras.utils.set_random_seed(0)
    model = build_pretrained(2, backbone=backbone, weights=None)
    cam = build_gradcam(model)
    assert cam.layer == layer
    patches = to_model_input(np.load(tiny_course / "public_test_tensor.npy")[1:7:2])
    heatmaps, probs = cam.heatmaps(patches)
    assert heatmaps.shape == (3, 150, 150)
    others, _ = cam.heatmaps(patches, classes=1 - probs.argmax(axis=1))
    assert all(np.ptp(h) > 0 or np.ptp(o) > 0 for h, o in zip(heatmaps, others, strict=True))
    np.testing.assert_allclose(probs, model.predict(patches, verbose=0), rtol=1e-4, atol=1e-6)


def test_dicom_mammograms_with_an_roi(scratch_run, tiny_course, tensor_predictions, tmp_path):
    """A test patch pasted into a larger image at the ROI is predicted as the patch itself;
    a corrupt DICOM and one smaller than the ROI get error rows."""
    patch = np.load(tiny_course / "public_test_tensor.npy")[3]
    full = np.random.default_rng(0).integers(0, 4000, (300, 400), dtype=np.uint16)
    full[90:240, 120:270] = patch  # rows y0..y1, columns x0..x1
    folder = tmp_path / "dicoms"
    folder.mkdir()
    write_dicom(folder / "full.dcm", full)
    write_dicom(folder / "small.dcm", full[:100, :100])
    (folder / "broken.dcm").write_bytes(b"DICM but not really a DICOM file")
    rows = {
        row["id"]: row for row in _predict(scratch_run, folder, tmp_path, "roi=[120,90,270,240]")
    }
    assert set(rows) == {"full.dcm", "small.dcm", "broken.dcm"}
    good = rows["full.dcm"]
    assert good["error"] == "" and good["predicted"] == tensor_predictions[3]["predicted"]
    probs = [float(good[f"prob_{c}"]) for c in CLASSES]
    assert sum(probs) == pytest.approx(1.0)
    for c, value in zip(CLASSES, probs, strict=True):
        assert value == pytest.approx(float(tensor_predictions[3][f"prob_{c}"]), abs=1e-5)
    assert "cannot decode broken.dcm" in rows["broken.dcm"]["error"]
    assert "outside small.dcm" in rows["small.dcm"]["error"]
    assert rows["broken.dcm"]["predicted"] == rows["small.dcm"]["predicted"] == ""


def test_an_empty_roi_is_a_user_error(scratch_run, tmp_path):
    write_dicom(tmp_path / "full.dcm", np.zeros((200, 200), dtype=np.uint16))
    result = run_mammo(
        "predict", f"run={scratch_run}", f"input={tmp_path / 'full.dcm'}", "roi=[50,10,40,60]",
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(result, "roi=[50, 10, 40, 60]", "x0 < x1")


def test_predict_with_an_ensemble_folder(ensemble_run, tiny_course, tmp_path):
    run, _ = ensemble_run
    rows = _predict(run, tiny_course / "public_test_tensor.npy", tmp_path)
    index, truth = _abnormalities(tiny_course)
    probs = np.array([[float(rows[i][f"prob_{c}"]) for c in CLASSES] for i in index])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    recorded = read_metrics(run)
    assert float(np.mean(probs.argmax(axis=1) == truth)) == recorded["accuracy"]
    predicted = np.array([CLASSES.index(rows[i]["predicted"]) for i in index])
    np.testing.assert_array_equal(predicted, probs.argmax(axis=1))  # threshold 0.5


def test_explain_refuses_an_ensemble(ensemble_run, tmp_path):
    run, _ = ensemble_run
    result = run_mammo("explain", f"run={run}", "n=2", cwd=tmp_path)
    assert_user_error(result, "is an ensemble", "member runs")
