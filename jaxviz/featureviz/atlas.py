"""Channel atlases and semantic dictionaries: many units' visualisations, rendered as one batch.

References:
  Olah, Mordvintsev & Schubert, "Feature Visualization", Distill, 2017.
  Olah et al., "The Building Blocks of Interpretability", Distill, 2018 (semantic dictionaries).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.featureviz.objectives import channel
from jaxviz.featureviz.param import image_param
from jaxviz.featureviz.regularisers import Regularisers
from jaxviz.featureviz.render import RenderResult, render
from jaxviz.featureviz.transforms import STANDARD, Compose
from jaxviz.models.contract import Model


def channel_atlas(model: Model, layer: str, channels: int | list[int] = 16, *, key: jax.Array, size: int = 96, steps: int = 256,
                  transforms: Compose = STANDARD, regularisers: Regularisers = Regularisers(), progress: bool = True,
                  **param_options) -> RenderResult:
    """Feature visualisations of ``channels`` of ``layer`` (an int ``n``: the first ``n``), one image each, as one batch."""
    channels = list(range(channels)) if isinstance(channels, (int, np.integer)) else [int(c) for c in channels]
    if not channels:
        raise JaxvizError("channel_atlas needs at least one channel.")
    c = model.input_shape[-1] if model.input_shape else 3
    param = image_param(size, len(channels), c, **param_options)
    return render(model, channel(layer, channels), param, key=key, steps=steps, transforms=transforms,
                  regularisers=regularisers, progress=progress)


class SemanticDictionary(NamedTuple):
    """The top channels of ``layer`` at each spatial position of an image's activation.

    Attributes:
      layer: the layer.
      channels: ``(h, w, k)`` the ``k`` most active channels at each position, most active first.
      values: ``(h, w, k)`` their activations.
      unique: the sorted distinct channels in ``channels`` (render these once).
    """

    layer: str
    channels: np.ndarray
    values: np.ndarray
    unique: np.ndarray


def semantic_dictionary(model: Model, image: ArrayLike, layer: str, top_k: int = 1) -> SemanticDictionary:
    """Which channels of ``layer`` fire most at each position of ``image`` ``(H, W, C)`` or ``(1, H, W, C)``."""
    x = np.asarray(image, np.float32)
    x = x[None] if x.ndim == 3 else x
    if x.shape[0] != 1:
        raise ShapeError(f"semantic_dictionary takes one image; got a batch of {x.shape[0]}.")
    acts = np.asarray(model.activations(model.check_input(x), [layer])[layer])[0]
    if acts.ndim != 3:
        raise ShapeError(f"layer {layer!r} has no spatial axes (shape {acts.shape}); pick a convolutional layer.")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= acts.shape[-1]:
        raise JaxvizError(f"top_k must be in 1..{acts.shape[-1]}; got {top_k!r}.")
    order = np.argsort(-acts, axis=-1)[..., :top_k]
    values = np.take_along_axis(acts, order, axis=-1)
    return SemanticDictionary(layer, order, values, np.unique(order))


def dictionary_figure(sd: SemanticDictionary, images: ArrayLike, tile: int = 24) -> np.ndarray:
    """One tile per position: the visualisation of its top channel (``images[i]`` shows ``sd.unique[i]``),
    faded to white where the activation is weak. Returns ``(h * tile, w * tile, 3)``."""
    from jaxviz.data import resize

    imgs = np.asarray(images, np.float32)
    if len(imgs) != len(sd.unique):
        raise ShapeError(f"dictionary_figure needs one image per unique channel ({len(sd.unique)}); got {len(imgs)}.")
    tiles = resize(imgs, tile)
    tiles = np.repeat(tiles, 3, axis=-1) if tiles.shape[-1] == 1 else tiles
    lookup = {int(c): i for i, c in enumerate(sd.unique)}
    h, w = sd.channels.shape[:2]
    strength = sd.values[..., 0] / max(float(sd.values[..., 0].max()), 1e-12)
    out = np.ones((h * tile, w * tile, 3), np.float32)
    for y in range(h):
        for x in range(w):
            a = float(strength[y, x])
            out[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile] = a * tiles[lookup[int(sd.channels[y, x, 0])]] + (1 - a)
    return out
