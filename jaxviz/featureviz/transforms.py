"""Transformation robustness: random, differentiable image transforms as pure functions of a key.

Each transform is a hashable NamedTuple ``t`` with ``t(key, x) -> x'`` on a batch ``(B, H, W, C)``
(every image gets its own random draw) and ``t.out_size(h, w)``. :func:`compose` chains them,
splitting the key. Optimising an image through random transforms makes its features robust
instead of adversarial high-frequency patterns (Mordvintsev et al. 2015; Olah et al. 2017).

:data:`STANDARD` is Lucid's standard set: pad 12 (grey), jitter 8, scale by 0.9-1.1, rotate by
-10..10 degrees, jitter 4.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import JaxvizError, ShapeError


def _bilinear(img: jax.Array, ys: jax.Array, xs: jax.Array) -> jax.Array:
    """Sample ``img`` (H, W, C) at real coordinates ``ys``, ``xs`` (h, w), clamping to the edge."""
    h, w = img.shape[:2]
    ys, xs = jnp.clip(ys, 0.0, h - 1.0), jnp.clip(xs, 0.0, w - 1.0)
    y0, x0 = jnp.floor(ys), jnp.floor(xs)
    wy, wx = (ys - y0)[..., None], (xs - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
    y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
    top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
    bottom = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def affine(x: jax.Array, scale: jax.Array, angle: jax.Array, shift: jax.Array) -> jax.Array:
    """Zoom by ``scale``, rotate by ``angle`` (radians) about the centre and translate by ``shift`` (dy, dx)
    pixels, per image (``scale``, ``angle``: ``(B,)``; ``shift``: ``(B, 2)``); same size out, edges clamped."""
    _, h, w, _ = x.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    gy, gx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy, jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij")

    def one(img, s, a, d):
        # output pixel p comes from input R(-a) (p - d) / s
        py, px = gy - d[0], gx - d[1]
        cos, sin = jnp.cos(a), jnp.sin(a)
        ys = (cos * py - sin * px) / s + cy
        xs = (sin * py + cos * px) / s + cx
        return _bilinear(img, ys, xs)

    return jax.vmap(one)(x, scale, angle, shift)


class Pad(NamedTuple):
    """Pad ``width`` pixels on each side with a constant ``value`` (``mode="constant"``) or by reflection."""

    width: int
    mode: str = "constant"
    value: float = 0.5

    def __call__(self, key, x):
        pad = [(0, 0), (self.width, self.width), (self.width, self.width), (0, 0)]
        if self.mode == "constant":
            return jnp.pad(x, pad, constant_values=self.value)
        return jnp.pad(x, pad, mode="reflect")

    def out_size(self, h, w):
        return h + 2 * self.width, w + 2 * self.width


class Jitter(NamedTuple):
    """Crop ``(H - d, W - d)`` at a random offset in ``0..d`` per image (Lucid's jitter)."""

    d: int

    def __call__(self, key, x):
        b, h, w, c = x.shape
        off = jax.random.randint(key, (b, 2), 0, self.d + 1)
        return jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h - self.d, w - self.d, c)))(x, off)

    def out_size(self, h, w):
        if self.d >= min(h, w):
            raise ShapeError(
                f"jitter({self.d}) needs images larger than {self.d} px; the image is {h}x{w} at that point "
                "of the transforms. Render a larger image or use smaller pad/jitter."
            )
        return h - self.d, w - self.d


class RandomScale(NamedTuple):
    """Zoom about the centre by a factor drawn per image from ``scales`` (same size out)."""

    scales: tuple[float, ...]

    def __call__(self, key, x):
        s = jnp.asarray(self.scales, jnp.float32)[jax.random.randint(key, (x.shape[0],), 0, len(self.scales))]
        return affine(x, s, jnp.zeros_like(s), jnp.zeros((x.shape[0], 2), jnp.float32))

    def out_size(self, h, w):
        return h, w


class RandomRotate(NamedTuple):
    """Rotate about the centre by an angle in degrees drawn per image from ``angles`` (same size out)."""

    angles: tuple[float, ...]

    def __call__(self, key, x):
        a = jnp.deg2rad(jnp.asarray(self.angles, jnp.float32))[jax.random.randint(key, (x.shape[0],), 0, len(self.angles))]
        return affine(x, jnp.ones_like(a), a, jnp.zeros((x.shape[0], 2), jnp.float32))

    def out_size(self, h, w):
        return h, w


class RandomShiftScale(NamedTuple):
    """Translate by up to ``max_shift`` px and zoom by ``scale_range`` (uniform draws per image; same size out).

    The evaluation transform of class images: how much of the target probability survives small shifts
    and rescalings.
    """

    max_shift: float
    scale_range: tuple[float, float]

    def __call__(self, key, x):
        ks, kd = jax.random.split(key)
        b = x.shape[0]
        s = jax.random.uniform(ks, (b,), jnp.float32, *self.scale_range)
        d = jax.random.uniform(kd, (b, 2), jnp.float32, -self.max_shift, self.max_shift)
        return affine(x, s, jnp.zeros_like(s), d)

    def out_size(self, h, w):
        return h, w


class Compose(NamedTuple):
    """Apply ``transforms`` in order, each with its own key split from the one given."""

    transforms: tuple

    def __call__(self, key, x):
        if not self.transforms:
            return x
        for t, k in zip(self.transforms, jax.random.split(key, len(self.transforms))):
            x = t(k, x)
        return x

    def out_size(self, h, w):
        for t in self.transforms:
            h, w = t.out_size(h, w)
        return h, w


def _int(name, v, minimum=0):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise JaxvizError(f"{name} must be an integer >= {minimum}; got {v!r}.")
    return int(v)


def pad(width: int, mode: str = "constant", value: float = 0.5) -> Pad:
    if mode not in ("constant", "reflect"):
        raise JaxvizError(f"pad mode must be 'constant' or 'reflect'; got {mode!r}.")
    return Pad(_int("pad width", width), mode, float(value))


def jitter(d: int) -> Jitter:
    return Jitter(_int("jitter", d))


def random_scale(scales) -> RandomScale:
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise JaxvizError(f"random_scale needs positive scale factors; got {scales!r}.")
    return RandomScale(scales)


def random_rotate(angles) -> RandomRotate:
    angles = tuple(float(a) for a in angles)
    if not angles:
        raise JaxvizError("random_rotate needs at least one angle (degrees).")
    return RandomRotate(angles)


def compose(*transforms) -> Compose:
    """Chain transforms (each ``t(key, x)``); nested :class:`Compose` are flattened."""
    flat = []
    for t in transforms:
        flat.extend(t.transforms if isinstance(t, Compose) else [t])
    return Compose(tuple(flat))


STANDARD = compose(
    pad(12),
    jitter(8),
    random_scale([1 + (i - 5) / 50 for i in range(11)]),
    random_rotate(list(range(-10, 11)) + 5 * [0]),
    jitter(4),
)
NONE = compose()
