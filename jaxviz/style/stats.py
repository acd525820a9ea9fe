"""Style statistics and losses: what does not depend on position in a CNN's feature maps.

Gatys, Ecker & Bethge, "Texture Synthesis Using Convolutional Neural Networks" (NeurIPS 2015) and
"Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016) describe a texture, or the
style of an image, by the Gram matrices of several layers' feature maps. The lecture's two answers to
"what is style" are both here, switchable by name (:data:`STATISTICS`):

* ``"mean"``: first-order statistics, the spatial mean of each channel, ``(B, C)``;
* ``"gram"``: second-order moments ``F^T F / M`` over the ``M = H W`` positions, ``(B, C, C)``;
* ``"covariance"``: the centred Gram matrix ``(F - mu)^T (F - mu) / M``, ``(B, C, C)``.

Every statistic is normalised by the number of positions, so a texture and a crop of it, or the same
image at two sizes, have comparable statistics. Masked statistics (Champandard 2016, "Semantic Style
Transfer and Turning Two-Bit Doodles into Fine Artworks") weigh the positions by a segment mask and
normalise by the segment's area. All functions are pure, batched over the leading axis and jit-able.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError

STATISTICS = ("gram", "covariance", "mean")


def _features(f: ArrayLike, what: str = "features") -> jax.Array:
    f = jnp.asarray(f, jnp.float32)
    if f.ndim != 4:
        raise ShapeError(f"{what} must be a batch of feature maps (B, H, W, C); got shape {f.shape}.")
    return f


def check_statistic(statistic: str) -> str:
    if statistic not in STATISTICS:
        raise JaxvizError(f"unknown style statistic {statistic!r}; choose one of {', '.join(STATISTICS)}.")
    return statistic


def feature_means(f: ArrayLike) -> jax.Array:
    """First-order style: the spatial mean of every channel, ``(B, H, W, C) -> (B, C)``."""
    return _features(f).mean(axis=(1, 2))


def gram(f: ArrayLike, *, center: bool = False) -> jax.Array:
    """Gram matrix normalised by size, ``G_ij = sum_p F_pi F_pj / M`` over the ``M = H W`` positions.

    Gatys et al. (2015), eq. 1, divided by ``M``. With ``center=True`` the channel means are removed
    first, which gives the (biased) covariance matrix of the features.

    Args:
      f: feature maps ``(B, H, W, C)``.
      center: subtract each channel's spatial mean before the product.

    Returns:
      ``(B, C, C)`` symmetric positive semi-definite matrices.
    """
    f = _features(f)
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c)
    if center:
        flat = flat - flat.mean(axis=1, keepdims=True)
    return jnp.einsum("bpi,bpj->bij", flat, flat, precision=jax.lax.Precision.HIGHEST) / (h * w)


def covariance(f: ArrayLike) -> jax.Array:
    """Centred Gram matrix: the covariance of the channels over positions, ``(B, C, C)``."""
    return gram(f, center=True)


def style_statistic(f: ArrayLike, statistic: str = "gram") -> jax.Array:
    """One of :data:`STATISTICS` of feature maps ``(B, H, W, C)``."""
    check_statistic(statistic)
    if statistic == "mean":
        return feature_means(f)
    return gram(f, center=statistic == "covariance")


def check_masks(masks: ArrayLike, shape: tuple[int, ...], what: str = "masks") -> jax.Array:
    """Segment masks ``(B or 1, H, W, K)`` in [0, 1] for images of ``shape = (B, H, W, C)``.

    Concrete masks are checked: matching height and width, and at least one pixel per segment.
    """
    m = jnp.asarray(masks, jnp.float32)
    if m.ndim == 3:
        m = m[None]
    if m.ndim != 4:
        raise ShapeError(f"{what} must be (B, H, W, K) one-hot or soft segment masks; got shape {m.shape}.")
    if tuple(m.shape[1:3]) != tuple(shape[1:3]):
        raise ShapeError(
            f"{what} are {m.shape[1]}x{m.shape[2]} but the image is {shape[1]}x{shape[2]}; "
            "resize the segmentation to the image size (nearest neighbour keeps it one-hot)."
        )
    if m.shape[0] not in (1, shape[0]):
        raise ShapeError(f"{what} have batch {m.shape[0]} for a batch of {shape[0]} images; give 1 or {shape[0]}.")
    if not isinstance(m, jax.core.Tracer):
        area = np.asarray(m).sum(axis=(1, 2))
        empty = np.argwhere(area <= 0)
        if empty.size:
            raise JaxvizError(
                f"{what}: segment {int(empty[0][1])} has no pixels (in mask {int(empty[0][0])}); "
                "drop that segment or draw it in the segmentation."
            )
    return m


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)``: row ``i`` averages the input cells overlapping ``[i, i + 1) * n_in / n_out``."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_in)[None]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_masks(masks: ArrayLike, size: tuple[int, int]) -> jax.Array:
    """Masks ``(B, H, W, K)`` resized to a layer's ``(h, w)`` by exact area averaging."""
    m = jnp.asarray(masks, jnp.float32)
    if tuple(m.shape[1:3]) == tuple(size):
        return m
    rows, cols = _area_matrix(m.shape[1], size[0]), _area_matrix(m.shape[2], size[1])
    return jnp.einsum("ih,jw,bhwk->bijk", rows, cols, m, precision=jax.lax.Precision.HIGHEST)


def masked_gram(f: ArrayLike, masks: ArrayLike, *, center: bool = False, eps: float = 1e-8) -> jax.Array:
    """Gram matrix of each segment: ``G^k_ij = sum_p m^k_p F_pi F_pj / sum_p m^k_p``.

    Champandard (2016); the per-segment Gram matrices of fast-neural-doodle. Masks at the image's
    resolution are resized to the layer's by area averaging (:func:`resize_masks`); a mask of ones
    gives :func:`gram`. With ``center=True`` each segment's weighted mean is removed first.

    Args:
      f: feature maps ``(B, H, W, C)``.
      masks: ``(B or 1, H', W', K)`` segment weights in [0, 1] (one-hot or soft).
      center: per-segment covariance instead of second moments.
      eps: guards the division for segments that vanish at this layer's resolution.

    Returns:
      ``(B, K, C, C)``.
    """
    f = _features(f)
    b, h, w, c = f.shape
    m = resize_masks(masks, (h, w))
    m = jnp.broadcast_to(m, (b, h, w, m.shape[-1])).reshape(b, h * w, -1)
    flat = f.reshape(b, h * w, c)
    area = m.sum(axis=1)  # (B, K)
    g = jnp.einsum("bpk,bpi,bpj->bkij", m, flat, flat, precision=jax.lax.Precision.HIGHEST) / (area[..., None, None] + eps)
    if center:  # E_k[f f^T] - mu_k mu_k^T
        mean = jnp.einsum("bpk,bpi->bki", m, flat) / (area[..., None] + eps)
        g = g - mean[..., :, None] * mean[..., None, :]
    return g


def masked_means(f: ArrayLike, masks: ArrayLike, *, eps: float = 1e-8) -> jax.Array:
    """First-order style per segment: ``(B, H, W, C), (B, H', W', K) -> (B, K, C)``."""
    f = _features(f)
    b, h, w, c = f.shape
    m = resize_masks(masks, (h, w))
    m = jnp.broadcast_to(m, (b, h, w, m.shape[-1])).reshape(b, h * w, -1)
    return jnp.einsum("bpk,bpi->bki", m, f.reshape(b, h * w, c)) / (m.sum(axis=1)[..., None] + eps)


def masked_statistic(f: ArrayLike, masks: ArrayLike, statistic: str = "gram") -> jax.Array:
    """:func:`style_statistic` per segment: ``(B, K, C)`` for ``"mean"``, else ``(B, K, C, C)``."""
    check_statistic(statistic)
    if statistic == "mean":
        return masked_means(f, masks)
    return masked_gram(f, masks, center=statistic == "covariance")


def layer_style_loss(s: ArrayLike, target: ArrayLike) -> jax.Array:
    """Gatys' layer loss ``E_l = 1/4 mean((S - S_target)^2)`` over all but the batch axis, ``(B,)``.

    For size-normalised Gram matrices this is exactly eq. 4 of Gatys et al. (2015),
    ``1 / (4 N^2 M^2) sum_ij (G_ij - A_ij)^2`` with unnormalised ``G`` and ``A``.
    """
    d = jnp.asarray(s) - jnp.asarray(target)
    return 0.25 * jnp.mean(jnp.square(d).reshape(d.shape[0], -1), axis=1)


def style_loss(stats: Mapping[str, ArrayLike], targets: Mapping[str, ArrayLike],
               weights: Mapping[str, float] | None = None) -> jax.Array:
    """Weighted sum of :func:`layer_style_loss` over layers (Gatys et al. 2015, eq. 5), ``(B,)``.

    Args:
      stats: ``{layer: statistic}`` of the image being optimised.
      targets: ``{layer: statistic}`` of the style image; batch 1 broadcasts.
      weights: ``{layer: w_l}``; default ``1 / number of layers`` each.
    """
    if not stats:
        raise JaxvizError("style_loss needs at least one layer; got none.")
    missing = [n for n in stats if n not in targets]
    if missing:
        raise JaxvizError(f"no target statistic for layer(s) {', '.join(missing)}; compute targets for the same layers.")
    weights = {n: 1.0 / len(stats) for n in stats} if weights is None else weights
    return sum(weights[n] * layer_style_loss(s, targets[n]) for n, s in stats.items())


def content_loss(f: ArrayLike, target: ArrayLike) -> jax.Array:
    """Content loss ``1/2 mean((F - P)^2)`` per example (Gatys et al. 2016, eq. 1, size-normalised)."""
    d = jnp.asarray(f) - jnp.asarray(target)
    return 0.5 * jnp.mean(jnp.square(d).reshape(d.shape[0], -1), axis=1)


def total_variation(x: ArrayLike, *, power: float = 2.0) -> jax.Array:
    """Total variation ``mean |x[i+1,j] - x[i,j]|^p + mean |x[i,j+1] - x[i,j]|^p`` per image, ``(B,)``.

    Mahendran & Vedaldi (2015), used by Johnson et al. (2016) as an image prior; ``power=1`` is the
    anisotropic TV norm.
    """
    x = _features(x, "images")
    dy = jnp.abs(x[:, 1:] - x[:, :-1]) ** power
    dx = jnp.abs(x[:, :, 1:] - x[:, :, :-1]) ** power
    return dy.mean(axis=(1, 2, 3)) + dx.mean(axis=(1, 2, 3))


def gram_distance(stats: Mapping[str, ArrayLike], targets: Mapping[str, ArrayLike]) -> jax.Array:
    """Relative distance of style statistics, averaged over layers: ``mean_l |S_l - T_l|_F / |T_l|_F``, ``(B,)``.

    Scale-free, so layers of very different magnitude count alike; 0 for identical statistics.
    """
    if not stats:
        raise JaxvizError("gram_distance needs at least one layer; got none.")
    out = []
    for n, s in stats.items():
        s, t = jnp.asarray(s), jnp.broadcast_to(jnp.asarray(targets[n]), jnp.shape(s))
        b = s.shape[0]
        out.append(jnp.linalg.norm((s - t).reshape(b, -1), axis=1) / jnp.linalg.norm(t.reshape(b, -1), axis=1))
    return sum(out) / len(out)
