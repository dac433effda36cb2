"""`mammo data describe`: counts, the three figures, no TensorFlow needed."""

from __future__ import annotations

import json

import numpy as np

from tests.helpers import assert_user_error, run_folders, run_mammo


def test_describe_writes_counts_and_figures(tiny_course, tmp_path):
    result = run_mammo("data", "describe", f"data.dir={tiny_course}", "task=2.2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = run_folders(tmp_path / "outputs" / "describe")
    for name in ("label_distribution.png", "split_distribution.png", "samples.png"):
        assert (run / name).stat().st_size > 1000
    described = json.loads((run / "describe.json").read_text())
    labels = np.load(tiny_course / "train_labels.npy")
    test_labels = np.load(tiny_course / "public_test_labels.npy")
    assert described["raw_counts"]["train"]["mass malignant"] == int((labels == 2).sum())
    assert described["raw_counts"]["test"]["baseline"] == int((test_labels == 0).sum())
    counts = described["counts"]
    malignant = int(np.isin(labels, [2, 4]).sum())
    assert counts["train"]["malignant"] + counts["val"]["malignant"] == malignant
    # scikit-learn's stratified split rounds the validation share up
    assert sum(counts["val"].values()) == int(np.ceil(0.15 * int((labels > 0).sum())))
    assert "malignant" in result.stdout and "course label: baseline" in result.stdout


def test_describe_refuses_bad_data(tiny_course, tmp_path):
    result = run_mammo("data", "describe", f"data.dir={tmp_path / 'missing'}", cwd=tmp_path)
    assert_user_error(result, "is not a folder")


def test_describe_refuses_resume(tmp_path):
    result = run_mammo("data", "describe", f"resume={tmp_path}", cwd=tmp_path)
    assert_user_error(result, "nothing to resume")
