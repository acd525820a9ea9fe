"""Transformation robustness: random, differentiable image transforms as pure functions of a key.

Each transform is a hashable NamedTuple ``t`` with ``t(key, x) -> x'`` on a batch ``(B, H, W, C)``
(every image gets its own random draw) and ``t.out_size(h, w)``. Underneath, ``t.apply(u, x)`` takes
``t.draws`` uniform numbers per image, ``u`` of shape ``(B, t.draws)``: :func:`compose` chains
transforms with one uniform draw for all of them (each random-number call is a separate threefry
program, and compiling those dominates a small render's start-up on a CPU). Optimising an image through random transforms makes its features robust
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


def _choice(u: jax.Array, n: int) -> jax.Array:
    """Uniform ``u`` in [0, 1) -> an index in ``0..n-1``."""
    return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


class Pad(NamedTuple):
    """Pad ``width`` pixels on each side with a constant ``value`` (``mode="constant"``) or by reflection."""

    width: int
    mode: str = "constant"
    value: float = 0.5

    draws = 0

    def __call__(self, key, x):
        return self.apply(None, x)

    def apply(self, u, x):
        pad = [(0, 0), (self.width, self.width), (self.width, self.width), (0, 0)]
        if self.mode == "constant":
            return jnp.pad(x, pad, constant_values=self.value)
        return jnp.pad(x, pad, mode="reflect")

    def out_size(self, h, w):
        return h + 2 * self.width, w + 2 * self.width


class Jitter(NamedTuple):
    """Crop ``(H - d, W - d)`` at a random offset in ``0..d`` per image (Lucid's jitter)."""

    d: int

    draws = 2

    def __call__(self, key, x):
        return self.apply(jax.random.uniform(key, (x.shape[0], self.draws)), x)

    def apply(self, u, x):
        _, h, w, c = x.shape
        off = jnp.minimum(jnp.floor(u * (self.d + 1)).astype(jnp.int32), self.d)
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

    draws = 1

    def __call__(self, key, x):
        return self.apply(jax.random.uniform(key, (x.shape[0], self.draws)), x)

    def apply(self, u, x):
        return affine(x, *self.warp(u))

    def warp(self, u):
        """``(scale, angle, shift)`` per image for draws ``u`` (see :func:`affine`)."""
        s = jnp.asarray(self.scales, jnp.float32)[_choice(u[:, 0], len(self.scales))]
        return s, jnp.zeros_like(s), jnp.zeros((u.shape[0], 2), jnp.float32)

    def out_size(self, h, w):
        return h, w


class RandomRotate(NamedTuple):
    """Rotate about the centre by an angle in degrees drawn per image from ``angles`` (same size out)."""

    angles: tuple[float, ...]

    draws = 1

    def __call__(self, key, x):
        return self.apply(jax.random.uniform(key, (x.shape[0], self.draws)), x)

    def apply(self, u, x):
        return affine(x, *self.warp(u))

    def warp(self, u):
        """``(scale, angle, shift)`` per image for draws ``u`` (see :func:`affine`)."""
        a = jnp.deg2rad(jnp.asarray(self.angles, jnp.float32))[_choice(u[:, 0], len(self.angles))]
        return jnp.ones_like(a), a, jnp.zeros((u.shape[0], 2), jnp.float32)

    def out_size(self, h, w):
        return h, w


class RandomShiftScale(NamedTuple):
    """Translate by up to ``max_shift`` px and zoom by ``scale_range`` (uniform draws per image; same size out).

    The evaluation transform of class images: how much of the target probability survives small shifts
    and rescalings.
    """

    max_shift: float
    scale_range: tuple[float, float]

    draws = 3

    def __call__(self, key, x):
        return self.apply(jax.random.uniform(key, (x.shape[0], self.draws)), x)

    def apply(self, u, x):
        return affine(x, *self.warp(u))

    def warp(self, u):
        """``(scale, angle, shift)`` per image for draws ``u`` (see :func:`affine`)."""
        lo, hi = self.scale_range
        s = lo + (hi - lo) * u[:, 0]
        return s, jnp.zeros_like(s), self.max_shift * (2 * u[:, 1:3] - 1)

    def out_size(self, h, w):
        return h, w


def then(first, second):
    """The warp ``(scale, angle, shift)`` of applying warp ``first`` and then ``second`` (see :func:`affine`).

    Both map an output pixel ``p`` to ``R(-a) (p - d) / s`` about the centre, so the pair is one warp
    with ``s = s1 s2``, ``a = a1 + a2`` and ``d = d2 + s2 R(a2) d1``.
    """
    (s1, a1, d1), (s2, a2, d2) = first, second
    cos, sin = jnp.cos(a2), jnp.sin(a2)
    rotated = jnp.stack([cos * d1[:, 0] + sin * d1[:, 1], -sin * d1[:, 0] + cos * d1[:, 1]], axis=-1)
    return s1 * s2, a1 + a2, d2 + s2[:, None] * rotated


class Compose(NamedTuple):
    """Apply ``transforms`` in order, with one uniform draw per image shared out among them.

    Consecutive warps (scale, rotation, shift-and-scale) are combined into one :func:`affine`
    resampling: one bilinear interpolation instead of several (less blur, and about half the cost of
    the standard set's transforms).
    """

    transforms: tuple

    @property
    def draws(self) -> int:
        return sum(t.draws for t in self.transforms)

    def __call__(self, key, x):
        return self.apply(jax.random.uniform(key, (x.shape[0], self.draws)) if self.draws else None, x)

    def apply(self, u, x):
        i, warp = 0, None
        for t in self.transforms:
            ui = None if u is None else u[:, i:i + t.draws]
            i += t.draws
            if hasattr(t, "warp"):
                warp = t.warp(ui) if warp is None else then(warp, t.warp(ui))
                continue
            if warp is not None:
                x, warp = affine(x, *warp), None
            x = t.apply(ui, x)
        return x if warp is None else affine(x, *warp)

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
