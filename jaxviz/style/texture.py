"""Texture synthesis (Gatys, Ecker & Bethge, "Texture Synthesis Using Convolutional Neural Networks",
NeurIPS 2015): optimise an image from white noise until its feature statistics at a set of layers match
those of a texture image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.data import resize
from jaxviz.models.contract import Model
from jaxviz.style import _common
from jaxviz.style.features import (
    Extractor,
    check_image_size,
    extractor,
    texture_layers,
)
from jaxviz.style.optimize import Objective, optimize_image
from jaxviz.style.stats import gram_distance, style_statistic


class TextureResult(NamedTuple):
    """Result of :func:`synthesize_texture`.

    Attributes:
      image: ``(B, H, W, C)`` synthesised textures in [0, 1].
      loss: ``(B,)`` final style loss.
      gram_distance: ``(B,)`` relative distance of the statistics to the source's (:func:`~jaxviz.style.gram_distance`).
      losses: ``(steps,)`` summed loss before each step.
      steps, status, message: as in :class:`~jaxviz.style.OptimizeResult`.
    """

    image: jax.Array
    loss: jax.Array
    gram_distance: jax.Array
    losses: np.ndarray
    steps: int
    status: str
    message: str


def statistics(ext: Extractor, x: ArrayLike, statistic: str = "gram") -> dict[str, jax.Array]:
    """``{layer: statistic}`` of images ``x`` at the extractor's layers."""
    return _stats_jit(ext, jnp.asarray(x, jnp.float32), statistic)


def _stats(ext, x, statistic):
    return {n: style_statistic(a, statistic) for n, a in ext(x).items()}


_stats_jit = jax.jit(_stats, static_argnames="statistic")


def synthesize_texture(model: Model, texture: ArrayLike, *, key: jax.Array, layers: Sequence[str] | None = None,
                       weights=None, size: int | tuple[int, int] | None = None, statistic: str = "gram",
                       pooling: str = "max", method: str = "lbfgs", steps: int = 100, learning_rate: float = 0.02,
                       tv_weight=0.0, normalize: bool = True) -> TextureResult:
    """Synthesise textures that match ``texture``'s statistics at ``layers`` (Gatys et al. 2015).

    Args:
      model: any :class:`~jaxviz.models.Model` (default layers known for SqueezeNet and VGG).
      texture: ``(H, W, C)`` or a batch ``(B, H, W, C)`` of source textures, pixels in [0, 1].
      key: random key for the white-noise start images.
      layers: layers to match (default :func:`~jaxviz.style.texture_layers`).
      weights: per-layer weights: a sequence, a ``{layer: w}`` dict, or ``(B, L)`` rows (one per
        texture; the growing-subset figure is one batch with zero weights for unused layers).
      size: output ``(h, w)`` or int; default the texture's size (statistics are size-normalised).
      statistic: ``"gram"`` (Gatys), ``"covariance"`` or ``"mean"``.
      pooling: ``"max"`` or ``"avg"`` (Gatys replace max pooling by average pooling).
      method: ``"lbfgs"`` or ``"adam"``; steps, learning_rate: see :func:`~jaxviz.style.optimize_image`.
      tv_weight: total-variation weight (float or ``(B,)``); a little removes the pixel noise a strided first
        convolution cannot see (SqueezeNet's conv1), 0 is Gatys' objective.
      normalize: scale-free per-layer losses (see :class:`~jaxviz.style.Objective`).

    Returns:
      A :class:`TextureResult`.

    Example:
      >>> from jaxviz.data import photo, resize, to_rgb
      >>> tex = resize(to_rgb(photo("brick")), 96)
      >>> out = synthesize_texture(squeezenet(), tex, key=jax.random.key(0), steps=50)  # doctest: +SKIP
    """
    layers = texture_layers(model) if layers is None else layers
    ext = extractor(model, layers, pooling=pooling)
    src = _common.as_batch(texture, "texture")
    b = src.shape[0]
    h, w = _common.size_of(size, src.shape[1:3])
    check_image_size(ext, src.shape, "texture")
    check_image_size(ext, (b, h, w, src.shape[-1]), "output size")
    objective = Objective(ext.layers, statistic=statistic, normalize=normalize)
    targets = statistics(ext, src, statistic)
    args = {"style": targets, "layer_weights": _common.layer_weights(weights, ext.layers, b),
            "beta": jnp.ones((b,), jnp.float32), "tv_weight": _common.per_image(tv_weight, b, "tv_weight")}
    x0 = _common.noise(key, (b, h, w, src.shape[-1]))
    res = optimize_image(objective, ext, x0, args, method=method, steps=steps, learning_rate=learning_rate)
    dist = gram_distance(statistics(ext, res.image, statistic), targets)
    return TextureResult(res.image, res.loss, dist, res.losses, res.steps, res.status, res.message)


def growing_subsets(layers: Sequence[str]) -> np.ndarray:
    """``(L, L)`` layer-weight rows for the first 1, 2, ..., L layers, each row summing to one.

    The rows of Gatys et al. (2015) Fig. 2 (conv1_1; up to pool1; ...; up to pool4).
    """
    n = len(layers)
    rows = np.tril(np.ones((n, n), np.float32))
    return rows / rows.sum(axis=1, keepdims=True)




def disjoint_crops(texture: ArrayLike, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint ``size`` px crops of a texture rescaled to ``2 size`` px: top-left and bottom-right.

    Their statistic distance is the natural variation of the texture, the bar a synthesis should beat.
    """
    big = resize(_common.as_batch(texture, "texture")[0], 2 * size)
    return big[:size, :size], big[size:, size:]
