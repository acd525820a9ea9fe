"""The tour: one report of what jaxviz shows, built from independent sections.

Each section is a function ``section(ctx) -> dict`` that adds its figures and tables to
``ctx.report`` and returns its entries for ``summary.json``; later capabilities append their own
section to :data:`SECTIONS`. Sections share expensive results (a trained classifier) through
``ctx.shared``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from jaxviz.viz import Report


@dataclasses.dataclass
class TourContext:
    out: Path
    report: Report
    quick: bool = False
    seed: int = 0
    cache: str | None = None
    progress: bool = True
    shared: dict[str, Any] = dataclasses.field(default_factory=dict)

    def log(self, message: str) -> None:
        if self.progress:
            print(message, flush=True)


Section = Callable[[TourContext], dict]


def run_tour(
    out: str | Path = "jaxviz-out",
    *,
    quick: bool = False,
    seed: int = 0,
    cache: str | None = None,
    progress: bool = True,
    sections: tuple[Section, ...] | None = None,
) -> dict:
    """Run every tour section, write ``OUT/index.html`` and ``OUT/summary.json``; return the summary."""
    from jaxviz.tour import SECTIONS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, "jaxviz tour" + (" (quick)" if quick else ""))
    ctx = TourContext(out, report, quick, seed, cache, progress)
    summary: dict[str, Any] = {
        "quick": quick,
        "seed": seed,
        "platform": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "timings_s": {},
    }
    t_start = time.perf_counter()
    for section in sections or SECTIONS:
        name = section.__name__
        t0 = time.perf_counter()
        summary.update(section(ctx))
        summary["timings_s"][name] = round(time.perf_counter() - t0, 3)
        ctx.log(f"[{name}] done in {summary['timings_s'][name]:.1f} s")
    summary["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
    report.section("Run").table(
        [{"section": k, "seconds": v} for k, v in summary["timings_s"].items()],
        caption=f"backend {summary['platform']}; devices {', '.join(summary['devices'])}",
    )
    summary["report"] = str(report.write())
    summary["figures"] = list(report.figures)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
