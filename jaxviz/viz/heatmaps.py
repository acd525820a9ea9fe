"""Heatmaps: percentile normalisation, perceptual colour maps and overlays on images.

Maps are HxW, HxWx1, NxHxW or NxHxWx1 (numpy or JAX); a batch is normalised map by map.
Unsigned maps use ``inferno``; signed maps a diverging map (``RdBu_r``) centred at zero.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.colors import Colormap
from PIL import Image

from jaxviz.data.images import to_rgb
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.viz.images import as_hwc, to_float


def _maps(x, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` as float32 NxHxW plus its original shape, or a ShapeError naming ``what``."""
    a = np.asarray(x).astype(np.float32)
    shape = a.shape
    if a.ndim == 2:
        return a[None], shape
    if a.ndim == 3:
        return (a[None, ..., 0] if shape[-1] == 1 else a), shape
    if a.ndim == 4 and shape[-1] == 1:
        return a[..., 0], shape
    raise ShapeError(
        f"{what} needs maps shaped HxW, HxWx1, NxHxW or NxHxWx1; got shape {shape}"
        + (" (reduce the channels first, e.g. abs(x).sum(-1))" if a.ndim == 4 else "")
    )


def _single(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] == 1)


def normalize(x, *, percentile: float = 99.5, signed: bool = False) -> np.ndarray:
    """Scale each map by its percentiles; returns float32 in the shape of ``x``.

    Unsigned: non-negative maps go to ``x / p_high``, other maps to
    ``(x - p_low) / (p_high - p_low)`` with ``p_low`` the ``100 - percentile`` percentile; clipped
    to ``[0, 1]``. Signed: ``x / percentile(|x|)`` clipped to ``[-1, 1]``, so sign and zero are
    kept. Constant (zero-range) maps become zeros.
    """
    if not 0 < percentile <= 100:
        raise JaxvizError(f"percentile must be in (0, 100]; got {percentile}")
    maps, shape = _maps(x, "normalize")
    flat = maps.reshape(len(maps), -1)
    if signed:
        low = np.zeros(len(flat), np.float32)
        high = np.percentile(np.abs(flat), percentile, axis=1)
        bounds = (-1.0, 1.0)
    else:
        low = np.where(flat.min(axis=1) >= 0, 0.0, np.percentile(flat, 100 - percentile, axis=1))
        high = np.percentile(flat, percentile, axis=1)
        bounds = (0.0, 1.0)
    span = (high - low)[:, None]
    out = np.divide(flat - low[:, None], span, out=np.zeros_like(flat), where=span > 0)
    return np.clip(out, *bounds).astype(np.float32).reshape(shape)


def _colormap(cmap: str | Colormap | None, signed: bool) -> Colormap:
    if cmap is None:
        cmap = "RdBu_r" if signed else "inferno"
    if isinstance(cmap, Colormap):
        return cmap
    try:
        return matplotlib.colormaps[cmap]
    except KeyError:
        raise JaxvizError(
            f"unknown colormap {cmap!r}; use a matplotlib name such as 'inferno' or 'RdBu_r'"
        ) from None


def colorize(heatmap, cmap: str | Colormap | None = None, *, signed: bool = False) -> np.ndarray:
    """Map values to RGB float32 in ``[0, 1]``; HxW(x1) gives HxWx3, NxHxW(x1) gives NxHxWx3.

    Unsigned maps are read in ``[0, 1]`` (default ``inferno``); signed maps in ``[-1, 1]`` with
    zero at the middle colour of a diverging map (default ``RdBu_r``). Values outside are clipped;
    run :func:`normalize` first.
    """
    maps, shape = _maps(heatmap, "colorize")
    t = (np.clip(maps, -1.0, 1.0) + 1.0) / 2.0 if signed else np.clip(maps, 0.0, 1.0)
    rgb = _colormap(cmap, signed)(t)[..., :3].astype(np.float32)
    return rgb[0] if _single(shape) else rgb


def overlay(
    image,
    heatmap,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap | None = None,
    signed: bool = False,
    percentile: float | None = 99.5,
) -> np.ndarray:
    """Alpha-blend a colourised heatmap over an image; returns float32 HxWx3 in ``[0, 1]``.

    ``image`` is HxW or HxWxC (C = 1 or 3); ``heatmap`` is HxW or HxWx1 at any size and is resized
    to the image (bilinear), normalised with :func:`normalize` (skip with ``percentile=None`` for a
    map already in ``[0, 1]``, or ``[-1, 1]`` if ``signed``) and coloured with :func:`colorize`.
    """
    if not 0 <= alpha <= 1:
        raise JaxvizError(f"alpha must be in [0, 1]; got {alpha}")
    img = to_rgb(to_float(as_hwc(image, "overlay image")))
    maps, shape = _maps(heatmap, "overlay heatmap")
    if not _single(shape):
        raise ShapeError(f"overlay needs one HxW or HxWx1 heatmap; got shape {shape}")
    h, w = img.shape[:2]
    m = maps[0]
    if m.shape != (h, w):
        m = np.asarray(Image.fromarray(m).resize((w, h), Image.Resampling.BILINEAR))
    if percentile is not None:
        m = normalize(m, percentile=percentile, signed=signed)
    return ((1 - alpha) * img + alpha * colorize(m, cmap, signed=signed)).astype(np.float32)
