"""Figures of :mod:`jaxviz.inspect` results: image arrays (for :func:`jaxviz.viz.save_png` or a
:class:`jaxviz.viz.Report`) and matplotlib figures for the plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.inspect._common import check_channel
from jaxviz.inspect.activations import Histogram
from jaxviz.inspect.neighbours import Neighbours
from jaxviz.inspect.receptive import ReceptiveField, receptive_field
from jaxviz.inspect.topk import TopK, crop, top_examples, top_projections
from jaxviz.viz import image_grid

CHAR_WIDTH = 7  # pixels per character of PIL's default font, with a margin


def _scale_for(h: int, target: int = 48) -> int:
    return max(1, target // max(h, 1))


def filters_figure(panels: Mapping[str, np.ndarray], *, ncols: int | None = None) -> np.ndarray:
    """Several filter grids (``{caption: tiles}`` from :func:`~jaxviz.inspect.filter_images`) side by side,
    each captioned (e.g. ``"trained: 0.41"`` and ``"untrained: 0.02"``)."""
    grids = []
    for caption, tiles in panels.items():
        grid = image_grid(tiles, scale=_scale_for(tiles.shape[1], 24), ncols=ncols, pad=1, pad_value=0.5)
        spare = max(0, CHAR_WIDTH * len(caption) - grid.shape[1])  # widen a small grid so its caption fits
        grid = np.pad(grid, ((0, 0), (spare // 2, spare - spare // 2), (0, 0)), constant_values=1.0)
        grids.append(image_grid(grid[None], labels=[caption], pad=4))
    h = max(g.shape[0] for g in grids)
    padded = [np.pad(g, ((0, h - g.shape[0]), (0, 0), (0, 0)), constant_values=1.0) for g in grids]
    return np.concatenate(padded, axis=1)


def topk_figure(
    model,
    data: np.ndarray,
    topk: TopK,
    layer: str,
    channels: Sequence[int],
    *,
    field: ReceptiveField | None = None,
    projections: bool = True,
    projection_method: str = "deconvnet",
) -> np.ndarray:
    """For each channel a row: its top-k images' receptive-field crops around the argmax, then (if
    ``projections``) the same crops of :func:`~jaxviz.inspect.top_projections` -- Zeiler & Fergus
    (2014) Fig. 2. Dense layers show whole images. ``field`` reuses a :func:`receptive_field`."""

    if not len(channels):
        raise JaxvizError("topk_figure needs at least one channel.")
    spatial = len(model.layer_shapes()[layer]) == 4
    field = (receptive_field(model, layer) if field is None else field) if spatial else None
    tiles, labels = [], []
    for ch in channels:
        ch = check_channel(layer, topk.values.shape[0], ch)
        if spatial:
            ex = top_examples(model, data, topk, layer, ch, field=field)
            row = list(ex.crops)
        else:
            row = list(np.asarray(data[topk.indices[ch]], np.float32))
        row_labels = [f"{v:.2g}" for v in topk.values[ch]]
        if projections:
            proj = top_projections(model, data, topk, layer, ch, method=projection_method)
            proj = 0.5 + 0.5 * proj / np.maximum(np.abs(proj).max(axis=(1, 2, 3), keepdims=True), 1e-12)
            if spatial:
                size = row[0].shape[:2]
                proj = np.stack([crop(p, field.box(int(i), int(j)), size, fill=0.5) for p, (i, j) in zip(proj, topk.positions[ch])])
            row += list(proj)
            row_labels += [projection_method[:6]] * len(proj)
        tiles += row
        labels += row_labels
    ncols = len(tiles) // len(channels)
    return image_grid(tiles, ncols=ncols, scale=_scale_for(tiles[0].shape[0], 56), labels=labels, pad=2)


def neighbours_figure(queries: np.ndarray, database: np.ndarray, feature_nb: Neighbours, pixel_nb: Neighbours) -> np.ndarray:
    """Rows of: query, its nearest database images in feature space, then in pixel space
    (Krizhevsky et al. 2012, Fig. 4 right)."""
    q = np.asarray(queries, np.float32)
    k = feature_nb.indices.shape[1]
    tiles, labels = [], []
    for i in range(len(q)):
        tiles += [q[i]] + list(database[feature_nb.indices[i]]) + list(database[pixel_nb.indices[i]])
        labels += ["query"] + ["feature"] * k + ["pixel"] * k
    return image_grid(tiles, ncols=2 * k + 1, scale=_scale_for(q.shape[1], 56), labels=labels)


def sparsity_figure(fractions: Mapping[str, Mapping[str, float]]) -> Figure:
    """Bar chart of the zero fraction per layer; ``{series: {layer: fraction}}`` (e.g. trained/untrained)."""
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    series = list(fractions)
    layers = list(next(iter(fractions.values())))
    width = 0.8 / max(len(series), 1)
    for s, name in enumerate(series):
        ax.bar(np.arange(len(layers)) + s * width, [fractions[name].get(lay, np.nan) for lay in layers], width, label=name)
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, layers, rotation=45, ha="right")
    ax.set_ylabel("fraction of exact zeros")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    return fig


def histograms_figure(hists: Mapping[str, Histogram], *, channel_layer: str | None = None, channels: int = 16) -> Figure:
    """Small multiples of each layer's activation histogram (log counts), plus the per-channel
    histograms of ``channel_layer`` (first ``channels`` channels) as a heat map."""
    if not hists:
        raise ShapeError("histograms_figure needs at least one layer.")
    n = len(hists) + (channel_layer is not None)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
    for i, (name, h) in enumerate(hists.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.stairs(np.maximum(h.counts, 0.5), h.edges, fill=True)
        ax.set_yscale("log")
        ax.set_title(f"{name} (zeros {h.zero_fraction:.0%})", fontsize=9)
        ax.tick_params(labelsize=7)
    if channel_layer is not None:
        h = hists[channel_layer]
        ax = fig.add_subplot(rows, cols, n)
        cc = h.channel_counts[:channels].astype(float)
        ax.imshow(np.log1p(cc), aspect="auto", extent=(h.edges[0], h.edges[-1], len(cc) - 0.5, -0.5), cmap="magma")
        ax.set_title(f"{channel_layer}: per channel (log count)", fontsize=9)
        ax.set_ylabel("channel", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def embedding_figure(coords: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None, title: str = "") -> Figure:
    """Scatter of 2-D ``coords`` coloured by class."""
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    labels = np.asarray(labels)
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=labels, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
    if class_names is not None:
        handles = [ax.scatter([], [], color=sc.cmap(sc.norm(c)), s=12, label=str(class_names[c])[:12]) for c in np.unique(labels)]
        ax.legend(handles=handles, fontsize=6, loc="best", markerscale=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
