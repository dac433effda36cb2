"""report.html: well-formed, self-contained (images embedded, nothing external), escaped.

Real PNGs from mammo's own plot functions and real provenance records of tmp files.
Whether a browser would fetch anything is checked by the absence of any external
reference (no browser is installed on the test machines).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mammo_cli.data.fingerprints import TEST_FILES, course_files
from mammo_cli.evaluation.html import RunSection, metric_cells, render_report, write_report
from mammo_cli.evaluation.plots import save_confusion_matrix, save_curves
from mammo_cli.evaluation.reports import RunRow, TextTable, comparison_table, format_estimate
from mammo_cli.provenance import collect_provenance

#: elements without an end tag
VOID = {"meta", "img", "br", "hr", "input", "link", "source", "wbr", "col", "area", "base"}
#: elements that could make a browser load something or run code
FORBIDDEN = {"script", "link", "iframe", "object", "embed", "base", "frame", "audio", "video"}
#: attributes whose value a browser may fetch or follow
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "poster", "data", "formaction", "background"}
METRICS = {
    "accuracy": 0.8125,
    "loss": 0.41,
    "auc": 0.784,
    "f1": 0.75,
    "f1_macro": 0.79,
    "brier": 0.17,
    "ci": {"accuracy": [0.61, 0.93], "auc": [0.63, 0.901]},
    "ci_level": 0.95,
    "ci_method": "bootstrap",
    "epochs_run": 2,
    "warnings": ["only 16 test samples: intervals are wide"],
}


class Page(HTMLParser):
    """Collects tags, their attributes and text, and checks that tags nest and close."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()
        self.errors += [f"<{tag}> never closed" for tag in self.stack]

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def find(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


@pytest.fixture(scope="module")
def plots(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plots")
    history = {"accuracy": [0.5, 0.7], "loss": [0.9, 0.6], "val_accuracy": [0.5, 0.6]}
    history["val_loss"] = [1.0, 0.8]
    return {
        "Training curves": save_curves(history, folder / "curves.png"),
        "Confusion matrix": save_confusion_matrix(
            [[5, 3], [1, 7]], ["mass", "calcification"], folder / "cm.png", "test"
        ),
    }


def provenance_of(folder: Path, cache: Path) -> dict:
    for name in ("train_tensor.npy", "train_labels.npy", *TEST_FILES):
        if not (folder / name).exists():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(name.encode() * 64)
    return collect_provenance("train", [], [], course_files(folder), datetime.now(), cache)


def table(*names: str) -> TextTable:
    rows = [
        RunRow(name, {"model.hidden_units": str(64 * (i + 1))}, METRICS)
        for i, name in enumerate(names)
    ]
    return comparison_table(rows, title="mammo report: sweep")


def report(plots: dict[str, Path], tmp_path: Path, names=("0", "1")) -> str:
    runs = [
        RunSection(
            name,
            metric_cells(METRICS),
            METRICS["warnings"],
            {**plots, "ROC curve": tmp_path / "absent_roc.png"},
            provenance_of(tmp_path / "data", tmp_path / "cache"),
        )
        for name in names
    ]
    return render_report("Sweep report", [table(*names)], runs)


def test_page_is_well_formed(plots, tmp_path):
    page = Page(report(plots, tmp_path))
    assert page.errors == []
    assert [tag for tag, _ in page.tags][:3] == ["html", "head", "meta"]
    assert any("Sweep report" in text for text in page.text)


def test_every_image_is_the_embedded_png(plots, tmp_path):
    page = Page(report(plots, tmp_path))
    images = page.find("img")
    assert len(images) == 2 * len(plots), "two runs, each plot once; the absent ROC skipped"
    expected = [path.read_bytes() for path in plots.values()] * 2
    prefix = "data:image/png;base64,"
    for attrs, png in zip(images, expected, strict=True):
        assert attrs["src"].startswith(prefix)
        assert base64.b64decode(attrs["src"][len(prefix) :], validate=True) == png
    assert [attrs["alt"] for attrs in images] == list(plots) * 2


def test_nothing_refers_outside_the_page(plots, tmp_path):
    html = report(plots, tmp_path)
    page = Page(html)
    assert not FORBIDDEN & {tag for tag, _ in page.tags}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in URL_ATTRIBUTES:
                assert value.startswith(("data:image/png;base64,", "#")), (tag, name, value)
    # base64 has slashes of its own: look at everything else
    rest = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", html)
    for marker in ("http:", "https:", "//", "url(", "@import"):
        assert marker not in rest, marker


def test_user_text_is_escaped(plots, tmp_path):
    hostile = "<script>alert(1)</script>"
    run = RunSection(
        hostile,
        {"AUC": "<b>0.9</b>"},
        ['<img src="https://example.org/x.png" onerror="alert(2)">'],
        plots,
        provenance_of(tmp_path / "data", tmp_path / "cache"),
    )
    cells = TextTable(hostile, ["Run", "AUC"], [[hostile, "0.9"]], notes=[hostile])
    html = render_report(f"report & {hostile}", [cells], [run])
    page = Page(html)
    assert page.errors == []
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(page.find("img")) == len(plots), "the warning's <img> stayed text"
    assert not FORBIDDEN & {tag for tag, _ in page.tags}
    assert sum(hostile in text for text in page.text) >= 4


def test_table_cells_and_intervals(plots, tmp_path):
    assert format_estimate(0.784, [0.63, 0.901]) == "0.78 [0.63, 0.90]"
    assert format_estimate(0.784, None) == "0.78"
    assert format_estimate(0.784, [None, None]) == "0.78"
    assert format_estimate(None, [0.1, 0.2]) == "-"
    cells = metric_cells(METRICS)
    assert cells["AUC"] == "0.78 [0.63, 0.90]"
    assert cells["Test loss"] == "0.41"
    assert cells["Brier score"] == "0.17"
    assert cells["Intervals"] == "95% bootstrap"
    assert cells["Epochs run"] == "2"
    page = Page(report(plots, tmp_path))
    first_table_cells = [attrs.get("class") for tag, attrs in page.tags if tag == "td"][:7]
    # Hidden units (left) | accuracy loss AUC F-score F1 macro (right) | Run (left)
    assert first_table_cells == [None, "num", "num", "num", "num", "num", None]


def test_provenance_differences_are_shown(plots, tmp_path):
    same = provenance_of(tmp_path / "a", tmp_path / "cache")
    other_folder = tmp_path / "b"
    other_folder.mkdir()
    (other_folder / "public_test_tensor.npy").write_bytes(b"changed" * 64)
    other = provenance_of(other_folder, tmp_path / "cache")
    runs = [
        RunSection("run-a", provenance=same),
        RunSection("run-b", provenance=other),
        RunSection("old-run"),
    ]
    text = " ".join(Page(render_report("r", [], runs)).text)
    assert "public_test_tensor.npy" in text and "run-a" in text and "run-b" in text
    assert other["data"]["public_test_tensor.npy"]["sha256"][:12] in text
    assert "No provenance recorded for: old-run." in text
    alike = [RunSection("x", provenance=same), RunSection("y", provenance=same)]
    assert "All 2 runs with a provenance read the same data files" in " ".join(
        Page(render_report("r", [], alike)).text
    )


def test_a_file_that_is_not_a_png_is_refused(tmp_path):
    fake = tmp_path / "plot.png"
    fake.write_bytes(b"GIF89a not a png")
    with pytest.raises(ValueError, match="not a PNG"):
        render_report("r", [], [RunSection("run", images={"plot": fake})])


def test_write_report_writes_the_page(plots, tmp_path):
    runs = [RunSection("run", metric_cells(METRICS), (), plots)]
    path = write_report(tmp_path / "out" / "report.html", "r", [table("run")], runs)
    assert path.read_text(encoding="utf-8") == render_report("r", [table("run")], runs)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_rendering_does_not_load_tensorflow():
    code = (
        "import sys\n"
        "from mammo_cli.evaluation.html import RunSection, render_report\n"
        "render_report('r', [], [RunSection('run')])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
