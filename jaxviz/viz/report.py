"""A static HTML report: one self-contained ``index.html`` plus PNG figures, no server or scripts.

    report = Report("out/run", "Attribution on MNIST")
    sec = report.section("Saliency", "Gradients of the logit with respect to the pixels.")
    sec.figure(grid, "Saliency for ten test digits")
    sec.table([{"method": "IG", "deletion AUC": 0.1234}])
    report.write()  # -> out/run/index.html

Any part of the library can add its own section with ``report.section(title)``; asking again for
a title returns the same section, so content is appended in call order.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from jaxviz.errors import JaxvizError
from jaxviz.viz.images import save_figure, save_png

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #eee; }
nav ol { padding-left: 1.2rem; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; margin-top: .3rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: .3rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .85rem; }
"""


def _slug(text: str, default: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or default


def _cell(value: object, float_fmt: str) -> tuple[str, bool]:
    """A table cell's text and whether it is a number."""
    if isinstance(value, np.generic) or (hasattr(value, "dtype") and np.shape(value) == ()):
        value = np.asarray(value).item()
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, float):
        return float_fmt.format(value), True
    return str(value), isinstance(value, int)


class Section:
    """Part of a :class:`Report`; add content with :meth:`text`, :meth:`figure`, :meth:`table`,
    :meth:`code` (each returns the section, so calls chain)."""

    def __init__(self, report: Report, title: str, anchor: str):
        self.report = report
        self.title = title
        self.anchor = anchor
        self._parts: list[str] = []

    def text(self, text: str) -> Section:
        """A paragraph per blank-line-separated block of ``text``."""
        for block in re.split(r"\n\s*\n", text.strip()):
            if block:
                self._parts.append(f"<p>{html.escape(block)}</p>")
        return self

    def figure(
        self,
        image: str | os.PathLike | Figure | ArrayLike,
        caption: str = "",
        *,
        name: str | None = None,
    ) -> Section:
        """A figure from an image file, a matplotlib figure or an image array (saved as PNG).

        New files go to ``out_dir/figures/`` under a unique name slugged from ``name`` or the
        caption; files outside ``out_dir`` are copied there so the report stays self-contained.
        """
        path = self.report._add_figure(image, name or caption)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        alt = html.escape(caption or path, quote=True)
        src = html.escape(path, quote=True)
        self._parts.append(f'<figure><img src="{src}" alt="{alt}">{cap}</figure>')
        return self

    def table(
        self,
        rows: Sequence[Mapping[str, object]] | Sequence[Sequence[object]],
        header: Sequence[str] | None = None,
        caption: str | None = None,
        float_fmt: str = "{:.4g}",
    ) -> Section:
        """A table from dicts (columns from their keys, in first-seen order) or lists of cells.

        Floats are written with ``float_fmt``; missing dict entries are left blank.
        """
        rows = list(rows)
        if rows and all(isinstance(r, Mapping) for r in rows):
            if header is None:
                header = list(dict.fromkeys(k for r in rows for k in r))
            cells = [[r.get(k, "") for k in header] for r in rows]
        else:
            cells = [list(r) for r in rows]
            for i, r in enumerate(cells):
                if header is not None and len(r) != len(header):
                    raise JaxvizError(
                        f"table row {i} has {len(r)} cells; the header has {len(header)}"
                    )
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        if header is not None:
            out.append("<thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
                       + "</tr></thead>")
        out.append("<tbody>")
        for r in cells:
            tds = []
            for value in r:
                text, numeric = _cell(value, float_fmt)
                tds.append(f'<td class="num">{html.escape(text)}</td>' if numeric
                           else f"<td>{html.escape(text)}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</tbody></table>")
        self._parts.append("".join(out))
        return self

    def code(self, code: str) -> Section:
        """A preformatted block (commands, configs, logs)."""
        self._parts.append(f"<pre><code>{html.escape(code)}</code></pre>")
        return self

    def _html(self) -> str:
        body = "\n".join(self._parts)
        title = html.escape(self.title)
        return f'<section id="{self.anchor}">\n<h2>{title}</h2>\n{body}\n</section>'


class Report:
    """A static HTML report written to ``out_dir/index.html`` by :meth:`write`.

    ``figures`` lists the figure paths (relative to ``out_dir``, with ``/``) in insertion order.
    """

    def __init__(self, out_dir: str | os.PathLike, title: str = "jaxviz report"):
        self.out_dir = Path(out_dir)
        self.title = title
        self.figures: list[str] = []
        self._sections: dict[str, Section] = {}

    @property
    def sections(self) -> list[Section]:
        """The sections in insertion order."""
        return list(self._sections.values())

    def section(self, title: str, text: str | None = None) -> Section:
        """The section called ``title``, created at the end if new; ``text`` is appended to it."""
        if title not in self._sections:
            anchors = {s.anchor for s in self._sections.values()}
            anchor = self._unique(_slug(title, "section"), anchors)
            self._sections[title] = Section(self, title, anchor)
        sec = self._sections[title]
        return sec.text(text) if text else sec

    @staticmethod
    def _unique(stem: str, taken: set[str], suffix: str = "") -> str:
        name, i = stem + suffix, 2
        while name in taken:
            name, i = f"{stem}-{i}{suffix}", i + 1
        return name

    def _add_figure(self, image: object, name: str) -> str:
        """Save or copy ``image`` under ``out_dir``; returns its relative posix path."""
        out = self.out_dir.resolve()
        taken = {f.removeprefix("figures/") for f in self.figures}
        if isinstance(image, (str, os.PathLike)):
            src = Path(image).resolve()
            if not src.is_file():
                raise FileNotFoundError(f"report figure {str(image)!r} does not exist")
            if not src.is_relative_to(out):
                stem = _slug(name or src.stem, "figure")
                dest = out / "figures" / self._unique(stem, taken, src.suffix.lower())
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = Path(shutil.copyfile(src, dest))
        else:
            src = out / "figures" / self._unique(_slug(name, "figure"), taken, ".png")
            if isinstance(image, Figure):
                save_figure(image, src)
            else:
                save_png(src, image)
        rel = src.relative_to(out).as_posix()
        self.figures.append(rel)
        return rel

    def write(self) -> Path:
        """Write ``out_dir/index.html`` (inline CSS, relative image links) and return its path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        title = html.escape(self.title)
        toc = "".join(
            f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in self.sections
        )
        nav = f"<nav><ol>{toc}</ol></nav>" if len(self._sections) > 1 else ""
        body = "\n".join(s._html() for s in self.sections)
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{nav}\n{body}\n</body>\n</html>\n"
        )
        path = self.out_dir / "index.html"
        path.write_text(page, encoding="utf-8")
        return path
