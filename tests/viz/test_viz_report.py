"""jaxviz.viz.report: the static HTML report."""

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from jaxviz.errors import JaxvizError
from jaxviz.viz import Report, save_png


def _srcs(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_writes_escaped_self_contained_html(tmp_path):
    out = tmp_path / "run"
    report = Report(out, "Run <1>")
    sec = report.section("Saliency & co", "First paragraph.\n\nSecond <b>bold</b>?")
    sec.figure(np.zeros((4, 4, 3)), "evil <script>alert(1)</script>")
    sec.figure(np.ones((4, 4)), "evil <script>alert(1)</script>")  # same slug -> unique name
    sec.code("x = a < b && c")
    path = report.write()

    assert path == out / "index.html"
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>Run &lt;1&gt;</title>" in page
    assert "Saliency &amp; co" in page and "<p>Second &lt;b&gt;bold&lt;/b&gt;?</p>" in page
    assert "x = a &lt; b &amp;&amp; c" in page
    assert "http" not in page and "<script" not in page
    assert page.count("<figure>") == 2 and page.count("<figcaption>") == 2

    srcs = _srcs(page)
    assert srcs == report.figures
    assert len(set(srcs)) == 2
    for src in srcs:
        assert src.startswith("figures/") and src.endswith(".png")
        assert (out / src).is_file()


def test_figure_paths_and_matplotlib_figures(tmp_path):
    out = tmp_path / "rep"
    inside = save_png(out / "maps" / "a.png", np.zeros((3, 3)))
    outside = save_png(tmp_path / "elsewhere" / "b.png", np.ones((3, 3)))
    fig = Figure(figsize=(1, 1), dpi=20)
    fig.add_subplot().plot([0, 1])

    report = Report(out, "Paths")
    report.section("A").figure(inside, "inside").figure(outside, "outside", name="Copied B")
    report.section("A").figure(fig, "a plot")
    report.write()

    assert report.figures == ["maps/a.png", "figures/copied-b.png", "figures/a-plot.png"]
    assert all((out / f).is_file() for f in report.figures)
    with Image.open(out / "figures" / "a-plot.png") as f:
        assert f.format == "PNG"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        report.section("A").figure(tmp_path / "missing.png", "nope")


def test_table_formats_numbers_and_escapes(tmp_path):
    report = Report(tmp_path, "Tables")
    report.section("Metrics").table(
        [{"method": "IG <x>", "auc": 0.123456789, "n": np.int64(10)},
         {"method": "Grad", "auc": np.float32(2.5), "ok": True}],
        caption="Deletion AUC",
    )
    report.section("Raw").table([[1.0 / 3, "a"], [2, None]], header=["v", "s"], float_fmt="{:.2f}")
    page = report.write().read_text()

    assert "<caption>Deletion AUC</caption>" in page
    assert "<th>method</th><th>auc</th><th>n</th><th>ok</th>" in page
    assert '<td class="num">0.1235</td>' in page and '<td class="num">2.5</td>' in page
    assert '<td class="num">10</td>' in page and "<td>True</td>" in page
    assert "IG &lt;x&gt;" in page
    assert '<td class="num">0.33</td>' in page and "<td>None</td>" in page
    with pytest.raises(JaxvizError, match="row 0 has 1 cells"):
        report.section("Raw").table([[1]], header=["a", "b"])


def test_sections_keep_order_and_are_reusable(tmp_path):
    report = Report(tmp_path / "r", "Order")
    report.section("Data").text("d")
    report.section("Attribution").text("a1")
    report.section("Data").text("d2")  # appended to the existing section
    report.section("data!")  # same slug, distinct anchor
    assert [s.title for s in report.sections] == ["Data", "Attribution", "data!"]
    page = report.write().read_text()
    assert page.index("Attribution</h2>") > page.index("<p>d2</p>") > page.index("<p>d</p>")
    assert 'id="data"' in page and 'id="data-2"' in page and 'href="#attribution"' in page
    assert Path(tmp_path / "r" / "index.html").is_file()
