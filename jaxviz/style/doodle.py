"""Neural doodles: a painting, its segmentation and a new segmentation give a new painting
(Champandard, "Semantic Style Transfer and Turning Two-Bit Doodles into Fine Artworks", 2016; the
masked Gram matrices of Ulyanov's fast-neural-doodle). Each segment of the new image matches the
statistics of the same segment of the painting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models.contract import Model
from jaxviz.style import _common
from jaxviz.style.features import check_image_size, doodle_layers, extractor
from jaxviz.style.optimize import Objective, optimize_image
from jaxviz.style.stats import check_masks, gram_distance, masked_statistic


class DoodleResult(NamedTuple):
    """Result of :func:`neural_doodle`.

    Attributes:
      image: ``(B, H, W, C)`` the new paintings in [0, 1].
      loss: ``(B,)`` final masked style loss.
      segment_distance: ``(B, K, K)``: entry ``[b, i, j]`` is the relative statistic distance of segment
        ``i`` of the result to segment ``j`` of the painting (a good doodle has the smallest on the diagonal).
      losses, steps, status, message: as in :class:`~jaxviz.style.OptimizeResult`.
    """

    image: jax.Array
    loss: jax.Array
    segment_distance: jax.Array
    losses: np.ndarray
    steps: int
    status: str
    message: str


def kmeans_segments(image: ArrayLike, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Segment an image (a painting or a colour doodle) into ``k`` colour clusters with k-means.

    Returns:
      ``(labels (H, W) int, centres (k, C))``, clusters ordered by their first colour channel then the
      others (so the same doodle colours get the same labels on two images).
    """
    from sklearn.cluster import KMeans

    x = _common.as_batch(image, "image")[0]
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise JaxvizError(f"k must be a positive number of segments; got {k!r}.")
    pixels = x.reshape(-1, x.shape[-1])
    km = KMeans(n_clusters=int(k), n_init=4, random_state=seed).fit(pixels)
    order = np.lexsort(km.cluster_centers_.T[::-1])
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[km.labels_].reshape(x.shape[:2]), km.cluster_centers_[order].astype(np.float32)


def masks_from_colors(doodle: ArrayLike, colors: ArrayLike) -> np.ndarray:
    """One-hot masks ``(H, W, K)`` of a colour doodle: each pixel goes to the nearest of ``colors`` ``(K, C)``."""
    x = _common.as_batch(doodle, "doodle")[0]
    colors = np.asarray(colors, np.float32)
    if colors.ndim != 2 or colors.shape[1] != x.shape[-1]:
        raise ShapeError(f"colors must be (K, {x.shape[-1]}) for a doodle with {x.shape[-1]} channel(s); got shape {colors.shape}.")
    d = ((x[..., None, :] - colors) ** 2).sum(-1)
    return one_hot(d.argmin(-1), len(colors))


def one_hot(labels: ArrayLike, k: int) -> np.ndarray:
    """Integer labels ``(H, W)`` -> masks ``(H, W, k)`` float32."""
    labels = np.asarray(labels)
    if labels.min() < 0 or labels.max() >= k:
        raise JaxvizError(f"labels must lie in 0..{k - 1}; got {labels.min()}..{labels.max()}.")
    return np.eye(k, dtype=np.float32)[labels]


def neural_doodle(model: Model, style: ArrayLike, style_masks: ArrayLike, target_masks: ArrayLike, *, key: jax.Array,
                  layers: Sequence[str] | None = None, weights=None, statistic: str = "gram", pooling: str = "max",
                  method: str = "lbfgs", steps: int = 100, learning_rate: float = 0.02, tv_weight: float = 0.0,
                  normalize: bool = True) -> DoodleResult:
    """Paint ``target_masks`` in the style of ``style`` segment by segment (masked Gram matrices).

    Args:
      model: any :class:`~jaxviz.models.Model` (default layers: :func:`~jaxviz.style.doodle_layers`).
      style: ``(H, W, C)`` the painting.
      style_masks: ``(H, W, K)`` its segmentation (one-hot or soft; :func:`kmeans_segments` + :func:`one_hot`).
      target_masks: ``(h, w, K)`` or ``(B, h, w, K)`` new segmentations with the same ``K`` segments.
      key: random key for the noise start.
      layers, weights, statistic, pooling, method, steps, learning_rate, normalize: see
        :func:`~jaxviz.style.synthesize_texture`; tv_weight: total variation weight.

    Returns:
      A :class:`DoodleResult`.
    """
    s = _common.as_batch(style, "style image")
    if s.shape[0] != 1:
        raise JaxvizError(f"give one style image; got a batch of {s.shape[0]}.")
    sm = check_masks(style_masks, s.shape, "style masks")
    tm = np.asarray(target_masks, np.float32)
    tm = tm[None] if tm.ndim == 3 else tm
    if tm.ndim != 4:
        raise ShapeError(f"target masks must be (h, w, K) or (B, h, w, K); got shape {tm.shape}.")
    if tm.shape[-1] != sm.shape[-1]:
        raise ShapeError(f"the style has {sm.shape[-1]} segments but the target masks have {tm.shape[-1]}; use the same segment labels.")
    b = tm.shape[0]
    shape = (b, *tm.shape[1:3], s.shape[-1])
    tm = check_masks(tm, shape, "target masks")
    layers = doodle_layers(model) if layers is None else layers
    ext = extractor(model, layers, pooling=pooling)
    check_image_size(ext, s.shape, "style image")
    check_image_size(ext, shape, "target segmentation")
    objective = Objective(ext.layers, statistic=statistic, masked=True, normalize=normalize)
    targets = _masked_stats(ext, jnp.asarray(s), sm, statistic)
    args = {"style": targets, "masks": tm, "layer_weights": _common.layer_weights(weights, ext.layers, b),
            "beta": jnp.ones((b,), jnp.float32), "tv_weight": _common.per_image(tv_weight, b, "tv_weight")}
    res = optimize_image(objective, ext, _common.noise(key, shape), args, method=method, steps=steps, learning_rate=learning_rate)
    out = _masked_stats(ext, res.image, tm, statistic)
    k = sm.shape[-1]
    dist = jnp.stack([jnp.stack([gram_distance({n: v[:, i] for n, v in out.items()}, {n: v[:, j] for n, v in targets.items()})
                                 for j in range(k)], -1) for i in range(k)], -2)
    return DoodleResult(res.image, res.loss, dist, res.losses, res.steps, res.status, res.message)


_masked_stats = jax.jit(lambda ext, x, m, statistic: {n: masked_statistic(a, m, statistic) for n, a in ext(x).items()},
                        static_argnames="statistic")
