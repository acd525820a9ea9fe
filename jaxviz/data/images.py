"""Photos bundled with installed packages, image files, channel conversion and resizing.

Images are float32 numpy arrays in [0, 1], channels last: ``(H, W, C)`` or ``(N, H, W, C)``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxviz.errors import DataNotFoundError, JaxvizError, ShapeError

TEXTURES = ("brick", "grass", "gravel")
_SKIMAGE_COLOUR = (
    "astronaut", "chelsea", "coffee", "rocket",
    "hubble_deep_field", "colorwheel", "immunohistochemistry",
)  # fmt: skip
_SKIMAGE_GREY = ("camera", "moon", "coins", *TEXTURES)
_SKLEARN = ("china", "flower")
PHOTOS = (*_SKIMAGE_COLOUR, *_SKIMAGE_GREY, *_SKLEARN)

RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")


def photo(name: str) -> np.ndarray:
    """A bundled photo by name (see :data:`PHOTOS`): ``(H, W, 3)``, or ``(H, W, 1)`` if grey.

    The array is cached and read-only; copy it before changing it in place.
    """
    if name not in PHOTOS:
        raise JaxvizError(f"unknown photo {name!r}; choose one of {', '.join(PHOTOS)}")
    return _photo(name)


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        pixels = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        pixels = getattr(skimage.data, name)()
    x = pixels.astype(np.float32) / np.float32(255)
    x = x[..., None] if x.ndim == 2 else x
    x.flags.writeable = False
    return x


def load_image(path: str | os.PathLike, *, mode: str | None = "RGB") -> np.ndarray:
    """Read an image file as ``(H, W, C)`` float32 in [0, 1], upright per its EXIF orientation.

    ``mode="RGB"`` gives 3 channels, ``"L"`` 1 channel (BT.601 luma), ``None`` keeps grey files
    grey and colour files RGB. Transparent pixels are composited over white; 16-bit grey files
    keep their precision.
    """
    if mode not in ("RGB", "L", None):
        raise JaxvizError(f"mode must be 'RGB', 'L' or None, got {mode!r}")
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in _SIXTEEN_BIT_MODES:
                x = np.asarray(img, np.float32)[..., None] / np.float32(65535)
            elif img.mode == "F":
                x = np.clip(np.asarray(img, np.float32), 0, 1)[..., None]
            else:
                grey = img.mode in ("1", "L", "LA")
                x = np.asarray(img.convert("LA" if grey else "RGBA"), np.float32) / np.float32(255)
                alpha = x[..., -1:]
                x = x[..., :-1] * alpha + (1 - alpha)
    except (UnidentifiedImageError, OSError) as err:
        raise JaxvizError(f"cannot read image {path}: {err}") from None
    if mode == "RGB":
        return to_rgb(x)
    if mode == "L":
        return to_grey(x)
    return x


def to_rgb(x: np.ndarray) -> np.ndarray:
    """Repeat a grey channel three times; RGB input is returned unchanged."""
    x = np.asarray(x)
    channels = _channels(x)
    return np.repeat(x, 3, axis=-1) if channels == 1 else x


def to_grey(x: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of RGB images as one channel; grey input is returned unchanged."""
    x = np.asarray(x)
    channels = _channels(x)
    if channels == 1:
        return x
    return (x @ _LUMA.astype(np.result_type(x.dtype, np.float32)))[..., None]


def resize(
    x: np.ndarray,
    size: int | tuple[int, int],
    *,
    method: str = "bilinear",
    crop: str | None = "center",
) -> np.ndarray:
    """Resize ``(H, W, C)`` or ``(N, H, W, C)`` images to ``size`` (an int means square).

    With ``crop="center"`` the images are scaled so they cover ``size`` (for a square ``size``: the
    shorter side matches) and the centre is cut out, keeping the aspect ratio; with ``crop=None``
    they are stretched to ``size``. Downscaling is antialiased; the result is clipped to [0, 1].
    """
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ShapeError(f"resize expects (H, W, C) or (N, H, W, C) images, got shape {x.shape}")
    if method not in RESIZE_METHODS:
        raise JaxvizError(f"unknown resize method {method!r}; choose one of {RESIZE_METHODS}")
    if crop not in ("center", None):
        raise JaxvizError(f"crop must be 'center' or None, got {crop!r}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if out_h < 1 or out_w < 1:
        raise JaxvizError(f"size must be positive, got {size}")
    in_h, in_w = x.shape[-3:-1]
    if crop == "center":
        scale = max(out_h / in_h, out_w / in_w)
        new_h, new_w = max(out_h, round(in_h * scale)), max(out_w, round(in_w * scale))
    else:
        new_h, new_w = out_h, out_w
    shape = (*x.shape[:-3], new_h, new_w, x.shape[-1])
    y = np.asarray(jax.image.resize(x.astype(np.float32), shape, method=method))
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    return np.clip(y[..., top : top + out_h, left : left + out_w, :], 0, 1)


def _channels(x: np.ndarray) -> int:
    if x.ndim < 3 or x.shape[-1] not in (1, 3):
        raise ShapeError(f"expected (..., H, W, 1) or (..., H, W, 3) images, got shape {x.shape}")
    return x.shape[-1]
