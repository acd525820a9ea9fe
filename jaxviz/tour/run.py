"""``run_tour``: every section of :data:`SECTIONS` into one report and one ``summary.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax

from jaxviz.tour.attribution import attribution
from jaxviz.tour.classifier import classifier
from jaxviz.tour.core import Section, TourContext
from jaxviz.tour.distill import distillation
from jaxviz.tour.featureviz import featureviz
from jaxviz.tour.generate import generation
from jaxviz.tour.imagenet import imagenet
from jaxviz.tour.inspect import inspect
from jaxviz.tour.style import style
from jaxviz.viz import Report

# The report's sections, in order; a new capability appends its own.
SECTIONS: tuple[Section, ...] = (classifier, imagenet, inspect, attribution, style, featureviz, generation, distillation)


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
