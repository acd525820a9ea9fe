"""The grand tour of a layer's activations (Asimov, "The Grand Tour", SIAM J. Sci. Stat. Comput. 1985;
Li, Zhao & Scheidegger, "Visualizing Neural Networks with the Grand Tour", Distill 2020).

Activations ``(N, D)`` are centred and reduced to their top ``d`` principal directions; a smooth
random rotation ``R(t) = expm(t A)`` of that ``d``-space (``A`` skew-symmetric, random) is projected
onto its first two axes, so the view moves continuously through every 2-D projection and, unlike
t-SNE, is linear: what is seen is the geometry of the layer. :func:`grand_tour_html` writes a
self-contained page (no server, no CDN) animating one view per layer with pause and layer controls;
:func:`grand_tour_gif` renders the same rotation as an animated GIF for static reports.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from jax.typing import ArrayLike
from PIL import Image, ImageDraw

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.inspect._common import check_positive


class TourView(NamedTuple):
    """One layer prepared for the grand tour: ``points (N, d)`` in the layer's top principal
    directions, scaled so the farthest point is at radius 1, and ``step (d, d)``, the rotation
    applied per frame (``expm(A * speed)`` for a random skew-symmetric ``A``)."""

    points: np.ndarray
    step: np.ndarray


def tour_view(features: ArrayLike, key: jax.Array, *, dims: int = 10, speed: float = 0.01) -> TourView:
    """Prepare ``(N, D)`` features for the tour (see :class:`TourView`).

    Small host-side linear algebra on one BLAS thread (a multi-threaded SVD of a few hundred rows
    gains nothing and, on a busy machine, loses seconds to oversubscription).
    """
    from scipy.linalg import expm
    from threadpoolctl import threadpool_limits

    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ShapeError(f"the grand tour needs (N, D) features with N >= 2; got shape {f.shape}.")
    d = min(check_positive("dims", dims), f.shape[1], f.shape[0])
    if d < 2:
        raise ShapeError(f"the grand tour needs at least 2 dimensions; got features of shape {f.shape}.")
    f = f - f.mean(axis=0)
    with threadpool_limits(1, user_api="blas"):
        _, _, vt = np.linalg.svd(f, full_matrices=False)
    points = f @ vt[:d].T
    points /= max(float(np.linalg.norm(points, axis=1).max()), 1e-12)
    a = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist()).standard_normal((d, d))
    a = (a - a.T) / np.sqrt(2.0 * d)
    return TourView(points.astype(np.float32), expm(float(speed) * a))


def tour_frames(view: TourView, frames: int) -> np.ndarray:
    """``(frames, N, 2)`` projections of the first ``frames`` steps of the tour."""
    frames = check_positive("frames", frames)
    d = view.points.shape[1]
    rs = np.empty((frames, d, 2))
    r = np.eye(d)
    for t in range(frames):
        rs[t] = r[:, :2]
        r = r @ view.step
    return np.einsum("nd,tdk->tnk", view.points, rs).astype(np.float32)


def _palette(n: int) -> list[str]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return ["#%02x%02x%02x" % tuple(int(255 * c) for c in cmap(i % cmap.N)[:3]) for i in range(n)]


def grand_tour_gif(view: TourView, labels: ArrayLike, path: str | os.PathLike, *, frames: int = 90, size: int = 240, fps: int = 15) -> Path:
    """Render the tour of one layer as an animated GIF (points coloured by ``labels``)."""
    labels = np.asarray(labels)
    if labels.shape != (len(view.points),):
        raise ShapeError(f"need one label per point: {len(view.points)} points, labels of shape {labels.shape}.")
    colours = _palette(int(labels.max()) + 1)
    images = []
    half = size / 2
    for xy in tour_frames(view, frames):
        im = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(im)
        for (u, v), lab in zip(xy, labels):
            cx, cy = half + 0.95 * half * u, half - 0.95 * half * v
            draw.ellipse((cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5), fill=colours[int(lab)])
        images.append(im.quantize(colors=64, dither=Image.Dither.NONE))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, optimize=False)
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>body{font-family:system-ui,sans-serif;margin:1em}canvas{border:1px solid #ccc}
#legend span{display:inline-block;margin-right:1em}#legend i{display:inline-block;width:.8em;height:.8em;margin-right:.3em}</style>
</head><body>
<h1>__TITLE__</h1>
<p>The grand tour (Li, Zhao &amp; Scheidegger, Distill 2020): a smooth random rotation of each layer's
activations (top principal directions) projected to 2-D. Points are test images coloured by class.</p>
<p><button id="pause">pause</button> layer <select id="layer"></select> <span id="frame"></span></p>
<canvas id="tour" width="__SIZE__" height="__SIZE__"></canvas>
<p id="legend"></p>
<script id="tour-data" type="application/json">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("tour-data").textContent);
const canvas = document.getElementById("tour"), ctx = canvas.getContext("2d", {willReadFrequently: true});
const select = document.getElementById("layer"), pauseButton = document.getElementById("pause");
let layer = 0, paused = false, frame = 0, R = null;
data.layers.forEach((l, i) => { const o = document.createElement("option"); o.value = i; o.textContent = l.name; select.appendChild(o); });
data.classes.forEach((c, i) => { document.getElementById("legend").insertAdjacentHTML("beforeend", `<span><i style="background:${data.colours[i]}"></i>${c}</span>`); });
function identity(d) { return Array.from({length: d}, (_, i) => Array.from({length: d}, (_, j) => +(i === j))); }
function matmul(a, b) { return a.map(row => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0))); }
function orthonormalise(m) {  // Gram-Schmidt on the columns, against round-off drift
  const d = m.length, cols = [];
  for (let j = 0; j < d; j++) {
    let c = m.map(r => r[j]);
    for (const q of cols) { const p = c.reduce((s, v, i) => s + v * q[i], 0); c = c.map((v, i) => v - p * q[i]); }
    const n = Math.hypot(...c); cols.push(c.map(v => v / n));
  }
  return m.map((_, i) => cols.map(c => c[i]));
}
function reset() { R = identity(data.layers[layer].points[0].length); frame = 0; }
function draw() {
  const l = data.layers[layer], half = canvas.width / 2;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  l.points.forEach((p, n) => {
    let u = 0, v = 0; for (let k = 0; k < p.length; k++) { u += p[k] * R[k][0]; v += p[k] * R[k][1]; }
    ctx.fillStyle = data.colours[data.labels[n]];
    ctx.fillRect(half + 0.95 * half * u - 1.5, half - 0.95 * half * v - 1.5, 3, 3);
  });
  document.getElementById("frame").textContent = `frame ${frame}`;
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0; for (let i = 0; i < px.length; i += 4) if (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250) painted++;
  canvas.dataset.paintedPixels = painted; canvas.dataset.frame = frame; canvas.dataset.layer = l.name;
}
function tick() {
  if (!paused) { R = matmul(R, data.layers[layer].step); frame++; if (frame % 200 === 0) R = orthonormalise(R); draw(); }
  requestAnimationFrame(tick);
}
select.onchange = () => { layer = +select.value; reset(); draw(); };
pauseButton.onclick = () => { paused = !paused; pauseButton.textContent = paused ? "play" : "pause"; };
reset(); draw(); requestAnimationFrame(tick);
</script>
</body></html>
"""


def grand_tour_html(
    views: Mapping[str, TourView],
    labels: ArrayLike,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    title: str = "Grand tour",
    size: int = 480,
) -> Path:
    """Write a self-contained HTML page animating the tour of every layer in ``views``.

    The page has a pause/play button and a layer menu; points are coloured by ``labels`` with a
    legend of ``class_names``. The data (rounded to 4 digits) and the script are inlined.
    """
    if not views:
        raise JaxvizError("grand_tour_html needs at least one layer view.")
    labels = np.asarray(labels).astype(int)
    for name, v in views.items():
        if len(v.points) != len(labels):
            raise ShapeError(f"layer {name!r} has {len(v.points)} points but {len(labels)} labels were given.")
    n_classes = int(labels.max()) + 1
    class_names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    data = {
        "labels": labels.tolist(),
        "classes": class_names,
        "colours": _palette(max(n_classes, len(class_names))),
        "layers": [{"name": n, "points": np.round(v.points, 4).tolist(), "step": np.asarray(v.step, np.float64).tolist()} for n, v in views.items()],
    }
    page = (_PAGE.replace("__TITLE__", html.escape(title)).replace("__SIZE__", str(int(size)))
            .replace("__DATA__", json.dumps(data, separators=(",", ":")).replace("</", "<\\/")))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
