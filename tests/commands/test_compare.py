"""`mammo compare` and the paired columns of `mammo report`, from test_predictions.csv."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from tests.helpers import assert_user_error, run_folders, run_mammo


def compare(a, b, cwd, *extra):
    result = run_mammo("compare", str(a), str(b), *extra, cwd=cwd)
    return result, (run_folders(cwd / "outputs" / "compare") or [None])[-1]


def test_a_run_compared_with_itself_differs_by_nothing(members, tmp_path):
    run = members["2.1", "softmax"]
    for metric in ("auc", "accuracy", "f1_macro", "brier"):
        cwd = tmp_path / metric
        cwd.mkdir()
        result, folder = compare(run, run, cwd, f"compare.metric={metric}")
        assert result.returncode == 0, result.stderr
        payload = json.loads((folder / "compare.json").read_text())
        assert set(payload) >= {"metric", "a", "b", "difference", "ci", "p_value", "method", "n"}
        assert payload["difference"] == 0 and payload["p_value"] == 1.0, payload
        assert payload["n"] == 16 and payload["a"] == payload["b"]
        assert "not distinguishable at 95%" in result.stdout


def test_two_runs_of_one_classification_are_compared_with_delong(members, tmp_path):
    result, folder = compare(members["2.1", "softmax"], members["2.1", "sigmoid"], tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads((folder / "compare.json").read_text())
    assert payload["method"] == "delong" and payload["metric"] == "auc"
    assert payload["difference"] == pytest.approx(payload["b"] - payload["a"])
    assert 0.0 <= payload["p_value"] <= 1.0
    low, high = payload["ci"]
    assert low <= payload["difference"] <= high


def test_runs_of_other_classifications_or_test_sets_are_refused(members, pair_course, tmp_path):
    result, _ = compare(members["2.1", "softmax"], members["2.2", "softmax"], tmp_path)
    assert_user_error(result, "different classifications")
    evaluated = tmp_path / "evaluated"
    result = run_mammo(
        "evaluate",
        f"run={members['2.1', 'softmax']}",
        f"data.dir={pair_course}",
        f"hydra.run.dir={evaluated}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    result, _ = compare(members["2.1", "softmax"], evaluated, tmp_path)
    assert_user_error(result, "not scored on the same test set", "public_test_tensor.npy differs")
    assert not (tmp_path / "outputs" / "compare").exists()


def test_test_sets_one_byte_apart_are_refused_by_compare_and_flagged_by_report(
    tiny_course, tmp_path
):
    """Same samples, labels and order, but one byte of one test patch differs: the
    provenance fingerprints tell the runs apart."""
    changed = tmp_path / "changed"
    shutil.copytree(tiny_course, changed)
    tensor = changed / "public_test_tensor.npy"
    data = bytearray(tensor.read_bytes())
    data[-1] ^= 1
    tensor.write_bytes(bytes(data))
    sweep = tmp_path / "sweep"
    for name, folder in (("a", tiny_course), ("b", changed)):
        result = run_mammo(
            "train",
            f"data.dir={folder}",
            "trainer.epochs=1",
            "trainer.progress=false",
            f"hydra.run.dir={sweep / name}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
    result, _ = compare(sweep / "a", sweep / "b", tmp_path)
    assert_user_error(result, "not scored on the same test set", "public_test_tensor.npy differs")
    result = run_mammo("report", str(sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "provenance: data file public_test_tensor.npy differs" in (sweep / "report.md").read_text()
    )


def test_report_adds_intervals_and_the_p_value_against_the_best_run(members, tmp_path):
    sweep = members["2.1", "softmax"].parent
    result = run_mammo("report", str(sweep), "metric=auc", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO((sweep / "report.csv").read_text())))
    assert {"auc_ci_low", "auc_ci_high", "accuracy_ci_low", "brier_ci_high", "p_vs_best"} <= set(
        rows[0]
    )
    for row in rows:
        assert float(row["auc_ci_low"]) <= float(row["auc"]) <= float(row["auc_ci_high"])
    p_values = [row["p_vs_best"] for row in rows]
    assert "1.0" in p_values  # the best run against itself
    # runs of the other classification (task 2.2) share no test samples with the best
    assert any(p == "" for p in p_values)
    assert "p vs best" in (sweep / "report.md").read_text()


def test_report_html_of_a_two_by_two_sweep_embeds_every_plot(members, tmp_path):
    """One self-contained page: every image a data: URI, no reference outside the page,
    and each of the 4 runs shows its curves, confusion matrix, ROC and calibration."""
    from html.parser import HTMLParser

    sweep = members["2.1", "softmax"].parent
    result = run_mammo("report", str(sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (sweep / "report.html").read_text()

    class Collect(HTMLParser):
        sources: list[str] = []
        external: list[str] = []

        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "img":
                self.sources.append(attributes["src"])
            for key in ("src", "href"):
                value = attributes.get(key) or ""
                if value and not value.startswith(("data:", "#")):
                    self.external.append(value)

    parser = Collect()
    parser.feed(page)
    assert parser.external == []
    assert len(parser.sources) == 4 * 4
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    for caption in ("Training curves", "Confusion matrix", "ROC curve", "Calibration"):
        assert page.count(caption) >= 4
