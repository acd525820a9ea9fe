"""A number for checkerboard artifacts (Odena, Dumoulin & Olah, "Deconvolution and Checkerboard
Artifacts", distill.pub 2016): a stride-``s`` upsampling that overlaps unevenly leaves a pattern
that repeats every ``s`` pixels, i.e. power at the frequencies ``k / s`` cycles per pixel."""

from __future__ import annotations

import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import ShapeError


def checkerboard_score(images: ArrayLike, stride: int = 2, *, gradient: bool = False) -> np.ndarray:
    """Power at the stride frequencies of the spectrum, relative to the mean power at all non-zero frequencies.

    For each image (channels averaged after the transform) the 2D power spectrum of the mean-free
    image (or, with ``gradient=True``, of its horizontal and vertical differences, which flattens the
    1/f^2 spectrum of natural images) is read at the frequencies ``(i H / s, j W / s)``, ``(i, j) !=
    (0, 0)``: the period-``s`` pattern a stride-``s`` transposed convolution prints. The score is the
    mean power there divided by the mean power over all non-zero frequencies: about 1 for white noise,
    below 1 for smooth images, far above 1 for a visible checkerboard.

    Args:
      images: ``(H, W, C)`` or ``(B, H, W, C)``, height and width divisible by ``stride``.
      stride: the upsampling stride whose pattern is measured.
      gradient: score the finite differences instead of the pixels.

    Returns:
      ``(B,)`` float64 scores.
    """
    x = np.asarray(images, np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] % stride or x.shape[2] % stride or min(x.shape[1:3]) < 2 * stride:
        raise ShapeError(f"checkerboard_score needs (B, H, W, C) images with H and W multiples of the stride {stride} "
                         f"(and at least {2 * stride}); got shape {x.shape}. Crop the images first.")
    if gradient:
        fields = [np.diff(x, axis=1, append=x[:, :1]), np.diff(x, axis=2, append=x[:, :, :1])]
    else:
        fields = [x - x.mean(axis=(1, 2), keepdims=True)]
    power = sum((np.abs(np.fft.fft2(f, axes=(1, 2))) ** 2).mean(axis=-1) for f in fields)
    b, h, w = power.shape
    peaks = power[:, :: h // stride, :: w // stride].reshape(b, -1)[:, 1:]  # (0, 0) is the mean
    total = power.reshape(b, -1)[:, 1:]
    return peaks.mean(axis=1) / np.maximum(total.mean(axis=1), 1e-30)


def tiles(mosaic: ArrayLike, side: int) -> np.ndarray:
    """The ``side`` x ``side`` tiles of an unpadded ``(H, W, C)`` mosaic of outputs, ``(n, side, side, C)`` in row order."""
    m = np.asarray(mosaic)
    h, w, c = m.shape
    if h % side or w % side:
        raise ShapeError(f"a mosaic of {side} px tiles needs height and width multiples of {side}; got {m.shape}.")
    return m.reshape(h // side, side, w // side, side, c).transpose(0, 2, 1, 3, 4).reshape(-1, side, side, c)
