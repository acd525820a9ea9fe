"""Image helpers: numpy or JAX arrays in ``[0, 1]`` (or uint8) to PNG files, grids and figures.

Images are HWC (or HW for grey) and batches NHWC, RGB or grey. Everything returns numpy arrays;
matplotlib is only used through its Agg canvas (no pyplot, no windows).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from jaxviz.data.images import to_rgb
from jaxviz.errors import JaxvizError, ShapeError


def to_float(img) -> np.ndarray:
    """``img`` as float32 in ``[0, 1]``: integers are read as 0..255, floats clipped, NaN as 0."""
    x = np.asarray(img)
    if np.issubdtype(x.dtype, np.integer):
        return np.clip(x, 0, 255).astype(np.float32) / np.float32(255)
    return np.clip(np.nan_to_num(x.astype(np.float32)), 0.0, 1.0)


def to_uint8(img) -> np.ndarray:
    """``img`` as uint8 in 0..255 (floats in ``[0, 1]`` are scaled and rounded); shape unchanged."""
    x = np.asarray(img)
    if x.dtype == np.uint8:
        return x
    return np.round(to_float(x) * 255).astype(np.uint8)


def as_hwc(img, what: str = "image", channels: tuple[int, ...] = (1, 3)) -> np.ndarray:
    """``img`` as an HxWxC numpy array (HxW becomes HxWx1), or a ShapeError naming ``what``."""
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in channels:
        raise ShapeError(
            f"{what} must be HxW or HxWxC with C in {channels}; got shape {np.shape(img)}"
            + (" (a batch? index one image or use image_grid)" if x.ndim == 4 else "")
        )
    return x


def save_png(path: str | os.PathLike, img) -> Path:
    """Write ``img`` (HxW, HxWx1, HxWx3 or HxWx4; float in ``[0, 1]`` or uint8) as a PNG file.

    Parent directories are created. Returns the path written.
    """
    x = to_uint8(as_hwc(img, "save_png image", (1, 3, 4)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x).save(path, format="PNG")
    return path


def _as_batch(images) -> np.ndarray:
    """NHWC array or a sequence of HW/HWC images as float32 NxHxWx3 in ``[0, 1]``."""
    if isinstance(images, Sequence):
        if not images:
            raise ShapeError("image_grid needs at least one image; got an empty sequence")
        arrays = [as_hwc(im, f"image {i}") for i, im in enumerate(images)]
        sizes = {a.shape[:2] for a in arrays}
        if len(sizes) > 1:
            raise ShapeError(f"image_grid needs images of one size; got sizes {sorted(sizes)}")
        return np.stack([to_rgb(to_float(a)) for a in arrays])
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        hint = " (use images[None] for one HWC image or maps[..., None] for NxHxW maps)"
        raise ShapeError(
            f"image_grid needs NHWC images with 1 or 3 channels; got shape {x.shape}"
            + (hint if x.ndim == 3 else "")
        )
    if len(x) == 0:
        raise ShapeError("image_grid needs at least one image; got an empty batch")
    return to_rgb(to_float(x))


@functools.cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _label(text: str, width: int, height: int, background: np.ndarray) -> np.ndarray:
    """A ``height x width`` RGB float strip with ``text`` centred in PIL's default font."""
    bg = tuple(int(v) for v in to_uint8(background))
    strip = Image.new("RGB", (width, height), bg)
    font = _font()
    _, top, _, bottom = font.getbbox("Ag")
    x = max(0.0, (width - font.getlength(text)) / 2)
    y = (height - (bottom - top)) / 2 - top
    ink = (0, 0, 0) if sum(bg) >= 3 * 128 else (255, 255, 255)
    ImageDraw.Draw(strip).text((x, y), text, fill=ink, font=font)
    return np.asarray(strip, dtype=np.float32) / np.float32(255)


def image_grid(
    images,
    *,
    ncols: int | None = None,
    pad: int = 2,
    pad_value: float | Sequence[float] = 1.0,
    labels: Sequence[object] | None = None,
    scale: int = 1,
    label_height: int | None = None,
) -> np.ndarray:
    """Tile images into one float32 HxWx3 image in ``[0, 1]`` (grey becomes RGB).

    ``images`` is an NHWC array (C = 1 or 3) or a sequence of same-size HW/HWC images. Tiles are
    upscaled by the integer ``scale`` (nearest neighbour), laid out in ``ncols`` columns (default
    about square) with ``pad`` pixels of ``pad_value`` (grey level or RGB) around every tile.
    ``labels`` (one per image) are drawn under each tile in a strip ``label_height`` pixels tall
    (default: fits PIL's default font).
    """
    batch = _as_batch(images)
    n = len(batch)
    if not (isinstance(scale, int) and scale >= 1):
        raise JaxvizError(f"scale must be a positive integer; got {scale!r}")
    if ncols is not None and ncols < 1:
        raise JaxvizError(f"ncols must be at least 1; got {ncols}")
    if pad < 0:
        raise JaxvizError(f"pad must be non-negative; got {pad}")
    if scale > 1:
        batch = batch.repeat(scale, axis=1).repeat(scale, axis=2)
    _, h, w, _ = batch.shape
    background = np.broadcast_to(np.asarray(pad_value, dtype=np.float32), (3,))
    strip = 0
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != n:
            raise ShapeError(f"image_grid got {len(labels)} labels for {n} images")
        if label_height is None:
            _, top, _, bottom = _font().getbbox("Ag")
            label_height = bottom - top + 6
        strip = label_height
    ncols = min(n, ncols or math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    tile_h = h + strip
    height, width = nrows * tile_h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad
    out = np.empty((height, width, 3), np.float32)
    out[:] = background
    for i, img in enumerate(batch):
        row, col = divmod(i, ncols)
        y, x = pad + row * (tile_h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = img
        if strip:
            out[y + h : y + tile_h, x : x + w] = _label(labels[i], w, strip, background)
    return out


def _agg_canvas(fig: Figure) -> FigureCanvasAgg:
    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a matplotlib figure with Agg; returns its pixels as uint8 HxWx3."""
    canvas = _agg_canvas(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: float = 150) -> Path:
    """Save a matplotlib figure (format from the suffix, e.g. ``.png``); creates parent dirs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _agg_canvas(fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
