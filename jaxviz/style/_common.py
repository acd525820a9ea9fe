"""Input checks and argument plumbing shared by texture synthesis, style transfer and doodles."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError


def as_batch(x: ArrayLike, what: str) -> np.ndarray:
    """``(H, W, C)`` or ``(B, H, W, C)`` pixels in [0, 1] as a float32 batch; NaN, inf and bad ranks rejected."""
    a = np.asarray(x, np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3):
        raise ShapeError(f"the {what} must be an image (H, W, C) or a batch (B, H, W, C) with 1 or 3 channels; got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise JaxvizError(f"the {what} contains NaN or infinite values; clean the image first.")
    if a.min() < -1e-3 or a.max() > 1 + 1e-3:
        raise JaxvizError(f"the {what} has pixels in [{a.min():.3g}, {a.max():.3g}]; give RGB in [0, 1] (divide uint8 by 255).")
    return np.clip(a, 0, 1)


def same_channels(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"the {what_a} has {a.shape[-1]} channel(s) but the {what_b} has {b.shape[-1]}; "
                         "convert both with jaxviz.data.to_rgb (or to_grey).")


def per_image(value, batch: int, what: str) -> jax.Array:
    """A float or ``(batch,)`` weights as a ``(batch,)`` float32 array."""
    v = np.asarray(value, np.float32)
    if v.ndim == 0:
        v = np.full((batch,), v, np.float32)
    if v.shape != (batch,) or not np.all(np.isfinite(v)) or np.any(v < 0):
        raise JaxvizError(f"{what} must be a non-negative number or {batch} of them (one per image); got {value!r}.")
    return jnp.asarray(v)


def layer_weights(weights, layers: Sequence[str], batch: int) -> jax.Array:
    """Layer weights as ``(1 or batch, len(layers))``: None -> ``1/L`` each; a dict by name; a sequence; rows."""
    n = len(layers)
    if weights is None:
        return jnp.full((1, n), 1.0 / n, jnp.float32)
    if isinstance(weights, dict):
        unknown = [k for k in weights if k not in layers]
        if unknown:
            raise JaxvizError(f"weights for layer(s) {', '.join(unknown)} that are not style layers ({', '.join(layers)}).")
        weights = [weights.get(name, 0.0) for name in layers]
    w = np.asarray(weights, np.float32)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != n or w.shape[0] not in (1, batch) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise JaxvizError(f"layer weights must be {n} non-negative numbers (one per layer: {', '.join(layers)}) "
                          f"or a ({batch}, {n}) array; got shape {w.shape}.")
    return jnp.asarray(w)


def size_of(size, default: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return default
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if h < 1 or w < 1:
        raise JaxvizError(f"size must be positive; got {size!r}.")
    return int(h), int(w)


def noise(key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """White noise (grey 0.5, standard deviation 0.1, clipped to [0, 1]), the start image of Gatys et al."""
    if key is None:
        raise JaxvizError("a random key is needed for the noise start image: pass key=jax.random.key(seed).")
    return jnp.clip(0.5 + 0.1 * jax.random.normal(key, tuple(shape), jnp.float32), 0.0, 1.0)
