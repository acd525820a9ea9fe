"""Training images for feed-forward stylisation: a folder of any images, or, offline, augmented crops
of the bundled photos (random crops, flips and colour jitter). Every batch is a pure function of the
global step, so a resumed training run sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from jaxviz.data import load_image, photo
from jaxviz.errors import DataNotFoundError, JaxvizError

CONTENT_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "china", "flower", "hubble_deep_field", "immunohistochemistry")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageSource(NamedTuple):
    """A pool of RGB images (each at least ``size`` on both sides) and how crops are drawn from them.

    Call :meth:`batch` with a global step; ``names`` says where each pool image came from.
    """

    pool: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    size: int
    seed: int = 0
    jitter: float = 0.1  # colour jitter strength (brightness, contrast and saturation factors 1 +- jitter)

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        """``(batch_size, size, size, 3)`` float32 crops for global step ``step``: random image, crop, flip, colours."""
        rng = np.random.default_rng((self.seed, step))
        out = np.empty((batch_size, self.size, self.size, 3), np.float32)
        for n in range(batch_size):
            img = self.pool[rng.integers(len(self.pool))]
            top, left = rng.integers(img.shape[0] - self.size + 1), rng.integers(img.shape[1] - self.size + 1)
            crop = img[top:top + self.size, left:left + self.size]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[n] = _colour_jitter(crop, rng.uniform(1 - self.jitter, 1 + self.jitter, 3))
        return out


def _colour_jitter(x: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Brightness, contrast and saturation scaled by ``factors`` (torchvision's ColorJitter order)."""
    brightness, contrast, saturation = factors
    x = x * brightness
    x = (x - x.mean()) * contrast + x.mean()
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey[..., None]) * saturation + grey[..., None]
    return np.clip(x, 0, 1)


def _fit(img: np.ndarray, size: int, scale: float) -> np.ndarray:
    """The image with its shorter side ``scale * size`` (never below ``size``): crops see a part of the scene.

    Resized on the host with PIL's antialiased bicubic filter (8-bit), so no program is compiled per
    image shape.
    """
    h, w = img.shape[:2]
    short = max(size, round(size * scale))
    if min(h, w) == short:
        return np.asarray(img, np.float32)
    f = short / min(h, w)
    pixels = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
    resized = pixels.resize((max(short, round(w * f)), max(short, round(h * f))), Image.Resampling.BICUBIC)
    return np.asarray(resized, np.float32) / 255


def content_images(folder: str | os.PathLike | None = None, *, size: int = 256, seed: int = 0, scale: float = 1.5,
                   photos: Sequence[str] = CONTENT_PHOTOS, jitter: float = 0.1) -> ImageSource:
    """Images to train a feed-forward stylisation network on.

    Args:
      folder: a directory of images (searched recursively; unreadable files are skipped with a
        warning, images smaller than ``size`` too). ``None``: the bundled ``photos`` (offline).
        With a network, any image data set written to a folder works (e.g. TFDS ``coco`` images).
      size: the side of the square training crops.
      scale: each image is resized so its shorter side is ``scale * size`` before cropping.
      seed: seeds every batch (with the step).
      jitter: colour jitter strength.

    Raises:
      DataNotFoundError: the folder is missing or holds no usable image.
    """
    if size < 16:
        raise JaxvizError(f"the crop size must be at least 16 px; got {size}.")
    if folder is None:
        names = tuple(photos)
        images = [np.asarray(photo(n)) for n in names]
    else:
        names, images = _read_folder(Path(folder), size)
    pool = tuple(_fit(img if img.shape[-1] == 3 else np.repeat(img, 3, axis=-1), size, scale) for img in images)
    return ImageSource(pool, tuple(names), int(size), int(seed), float(jitter))


def _read_folder(folder: Path, size: int) -> tuple[list[str], list[np.ndarray]]:
    if not folder.is_dir():
        raise DataNotFoundError(f"content folder not found: {folder}; give a directory of images.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}; put training images there.")
    names, images, small = [], [], []
    for path in files:
        try:
            img = load_image(path)
        except JaxvizError as err:
            warnings.warn(f"skipping {path}: {err}", stacklevel=3)
            continue
        if min(img.shape[:2]) < size:
            small.append(f"{path.name} ({img.shape[0]}x{img.shape[1]})")
            continue
        names.append(str(path.relative_to(folder)))
        images.append(img)
    if small:
        warnings.warn(f"skipping {len(small)} image(s) smaller than the {size} px crop: {', '.join(small[:5])}", stacklevel=3)
    if not images:
        why = f"all {len(small)} readable image(s) are smaller than the {size} px crop; use a smaller size" if small else "none could be read"
        raise DataNotFoundError(f"no usable training image in {folder}: {why}.")
    return names, images
