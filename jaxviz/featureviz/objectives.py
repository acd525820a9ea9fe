"""Objectives to maximise: a unit, a channel, a layer, a class, a direction, diversity, interpolation.

An :class:`Objective` maps the network's view of a batch (:class:`Features`: the images, the
activations of the layers it needs, and the logits if it needs them) to one score per image,
``(B,)``. Objectives are pytrees (indices and weights are array leaves), so changing a channel does
not recompile a render; they compose with ``+``, ``-`` and scalar ``*``::

    obj = channel("fire6", 12) + 0.5 * neuron("fire8", 3) - 1e-2 * layer("conv10")

``channel``, ``neuron`` and the class objectives accept one index or one per image, so a batch can
render many units at once (a channel atlas is one batch).

References:
  Erhan, Bengio, Courville & Vincent, "Visualizing Higher-Layer Features of a Deep Network", 2009.
  Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", 2014 (class images).
  Mordvintsev, Olah & Tyka, "Inceptionism", 2015 (the layer objective of DeepDream).
  Olah, Mordvintsev & Schubert, "Feature Visualization", Distill, 2017 (directions, diversity, interpolation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError, TargetError
from jaxviz.models.contract import Model


class Features(NamedTuple):
    """What an objective sees: ``images`` (B, H, W, C) as fed to the net, ``acts`` {layer: activation}, ``logits`` or None."""

    images: jax.Array
    acts: dict[str, jax.Array]
    logits: jax.Array | None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Term:
    """One weighted term; ``kind`` and ``layer`` are static, the arrays are leaves."""

    kind: str = dataclasses.field(metadata=dict(static=True))
    layer: str | None = dataclasses.field(metadata=dict(static=True))
    weight: Any  # () or (B,)
    index: Any = None  # channel / class: () or (B,) int
    position: Any = None  # (2,) or (B, 2) int (y, x); None: the centre
    vector: Any = None  # direction: (C,) or (B, C)


def _per_image(values: jax.Array, index: jax.Array) -> jax.Array:
    """``values[b, index[b]]`` for ``(B, C)`` values and a scalar or ``(B,)`` index."""
    idx = jnp.broadcast_to(jnp.asarray(index, jnp.int32), values.shape[:1])
    return jnp.take_along_axis(values, idx[:, None], axis=1)[:, 0]


def _spatial_mean(a: jax.Array) -> jax.Array:
    return a.mean(axis=(1, 2)) if a.ndim == 4 else a.reshape(a.shape[0], -1)


def _neuron(t: Term, f: Features) -> jax.Array:
    a = f.acts[t.layer]
    if a.ndim == 2:
        return _per_image(a, t.index)
    b, h, w, _ = a.shape
    pos = jnp.asarray([h // 2, w // 2] if t.position is None else t.position, jnp.int32)
    pos = jnp.broadcast_to(pos, (b, 2))
    return _per_image(a[jnp.arange(b), pos[:, 0], pos[:, 1]], t.index)


def _channel(t: Term, f: Features) -> jax.Array:
    return _per_image(_spatial_mean(f.acts[t.layer]), t.index)


def _layer(t: Term, f: Features) -> jax.Array:
    a = f.acts[t.layer]
    return jnp.square(a).reshape(a.shape[0], -1).mean(axis=1)


def _class_logit(t: Term, f: Features) -> jax.Array:
    return _per_image(f.logits, t.index)


def _class_prob(t: Term, f: Features) -> jax.Array:
    return _per_image(jax.nn.softmax(f.logits, axis=-1), t.index)


def _direction(t: Term, f: Features) -> jax.Array:
    a = _spatial_mean(f.acts[t.layer])
    v = jnp.broadcast_to(jnp.asarray(t.vector, jnp.float32), a.shape)
    return (a * v).sum(axis=1)


def _diversity(t: Term, f: Features) -> jax.Array:
    a = f.acts[t.layer]
    b, c = a.shape[0], a.shape[-1]
    flat = a.reshape(b, -1, c)
    grams = jnp.einsum("bnc,bnd->bcd", flat, flat).reshape(b, -1)
    grams = grams / (jnp.linalg.norm(grams, axis=1, keepdims=True) + 1e-10)
    sim = grams @ grams.T
    return -(sim.sum(axis=1) - jnp.diagonal(sim)) / b


_KINDS = {
    "neuron": _neuron,
    "channel": _channel,
    "layer": _layer,
    "class_logit": _class_logit,
    "class_prob": _class_prob,
    "direction": _direction,
    "diversity": _diversity,
}
_LOGIT_KINDS = ("class_logit", "class_prob")


def _scalar(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) and np.ndim(value) != 0:
        raise JaxvizError(f"objectives are scaled by scalars only; got {type(value).__name__} of shape {np.shape(value)}.")
    if isinstance(value, (bool, np.bool_)):
        raise JaxvizError("objectives are scaled by numbers, not booleans.")
    return float(value)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Objective:
    """A weighted sum of terms; ``objective(features) -> (B,)`` scores to maximise."""

    terms: tuple[Term, ...]

    @property
    def layers(self) -> tuple[str, ...]:
        """Layers whose activations the objective needs, in first-use order."""
        return tuple(dict.fromkeys(t.layer for t in self.terms if t.layer is not None))

    @property
    def needs_logits(self) -> bool:
        return any(t.kind in _LOGIT_KINDS for t in self.terms)

    def __call__(self, features: Features) -> jax.Array:
        total = 0.0
        for t in self.terms:
            total = total + jnp.asarray(t.weight, jnp.float32) * _KINDS[t.kind](t, features)
        return total

    def __add__(self, other: Objective) -> Objective:
        if isinstance(other, (int, float)) and other == 0:
            return self
        if not isinstance(other, Objective):
            raise JaxvizError(f"objectives add to objectives; got {type(other).__name__}. Scale with a number: 2 * obj.")
        return Objective(self.terms + other.terms)

    __radd__ = __add__

    def _scaled(self, s: Any) -> Objective:
        return Objective(tuple(dataclasses.replace(t, weight=np.asarray(t.weight, np.float32) * np.float32(s)) for t in self.terms))

    def __mul__(self, s: Any) -> Objective:
        return self._scaled(_scalar(s))

    __rmul__ = __mul__

    def __truediv__(self, s: Any) -> Objective:
        return self._scaled(1.0 / _scalar(s))

    def __neg__(self) -> Objective:
        return self._scaled(-1.0)

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def check(self, model: Model, shape: Sequence[int]) -> None:
        """Raise a jaxviz error if the objective does not fit ``model`` on images of ``shape`` (B, H, W, C)."""
        b = shape[0]
        layer_shapes = model.layer_shapes(jax.ShapeDtypeStruct(tuple(shape), jnp.float32)) if self.layers else {}
        for t in self.terms:
            _check_batch(t, b)
            if t.kind in _LOGIT_KINDS:
                n = model.num_classes
                if n is None:
                    raise TargetError(f"{model.name} has no class logits; use a layer objective (channel, neuron, layer) instead.")
                _check_range(t.index, n, "class index", model.name, f"{n} classes", TargetError)
                continue
            ls = layer_shapes[model.check_layers([t.layer])[0]]
            channels = ls[-1]
            if t.index is not None:
                _check_range(t.index, channels, "channel", f"layer {t.layer!r}", f"{channels} channels", JaxvizError)
            if t.vector is not None and np.shape(t.vector)[-1] != channels:
                raise ShapeError(f"direction in layer {t.layer!r} needs {channels} components; got {np.shape(t.vector)[-1]}.")
            if t.kind == "neuron" and t.position is not None:
                if len(ls) != 4:
                    raise ShapeError(f"layer {t.layer!r} has no spatial axes (shape {ls}); drop the position (x, y) of the neuron.")
                pos = np.asarray(t.position).reshape(-1, 2)
                if (pos < 0).any() or (pos[:, 0] >= ls[1]).any() or (pos[:, 1] >= ls[2]).any():
                    raise JaxvizError(
                        f"neuron position (y, x) {pos.tolist()} is outside layer {t.layer!r} of spatial size {ls[1]}x{ls[2]} "
                        f"for {shape[1]}x{shape[2]} images; use y in 0..{ls[1] - 1}, x in 0..{ls[2] - 1}."
                    )
            if t.kind == "diversity" and b < 2:
                raise ShapeError("the diversity objective compares images of a batch: render a batch of at least 2.")


def _check_batch(t: Term, b: int) -> None:
    for name in ("weight", "index"):
        v = getattr(t, name)
        if v is not None and np.ndim(v) == 1 and np.shape(v)[0] != b:
            raise ShapeError(f"{t.kind} objective has {np.shape(v)[0]} per-image {name}s for a batch of {b}; give one per image or a single value.")
    if t.position is not None and np.ndim(t.position) == 2 and np.shape(t.position)[0] != b:
        raise ShapeError(f"neuron objective has {np.shape(t.position)[0]} positions for a batch of {b}.")


def _check_range(index: Any, n: int, what: str, where: str, size: str, error: type) -> None:
    idx = np.atleast_1d(np.asarray(index))
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise error(f"{what} {int(bad[0])} is out of range for {where}: it has {size} (0..{n - 1}).")


def _index(value: int | Sequence[int] | ArrayLike, what: str) -> np.ndarray:
    idx = np.asarray(value)
    if idx.ndim > 1 or not np.issubdtype(idx.dtype, np.integer):
        raise JaxvizError(f"{what} must be an int or one int per image; got {value!r}.")
    return idx.astype(np.int32)


def _term(kind: str, layer: str | None = None, **fields) -> Objective:
    if layer is not None and not isinstance(layer, str):
        raise JaxvizError(f"layer must be a layer name (str); got {layer!r}.")
    return Objective((Term(kind, layer, np.float32(1.0), **fields),))


def neuron(layer: str, channel: int | Sequence[int], x: int | None = None, y: int | None = None) -> Objective:
    """One unit ``layer[y, x, channel]``: the centre position by default (or a non-spatial layer's unit)."""
    if (x is None) != (y is None):
        raise JaxvizError("give both x and y of the neuron, or neither (the centre).")
    position = None if x is None else _index([y, x], "neuron position")
    return _term("neuron", layer, index=_index(channel, "channel"), position=position)


def channel(layer: str, channel: int | Sequence[int]) -> Objective:
    """A channel ``layer[:, :, channel]``, averaged over positions (one channel, or one per image)."""
    return _term("channel", layer, index=_index(channel, "channel"))


def layer(layer: str) -> Objective:
    """The whole layer, ``mean(layer**2)`` (DeepDream; the sum divided by the layer's size)."""
    return _term("layer", layer)


def class_logit(cls: int | Sequence[int]) -> Objective:
    """The pre-softmax logit of class ``cls`` (Simonyan et al. 2014), one class or one per image."""
    return _term("class_logit", index=_index(cls, "class index"))


def class_prob(cls: int | Sequence[int]) -> Objective:
    """The softmax probability of class ``cls``. Maximising it can lower every other logit instead of
    raising this one, which is why Simonyan et al. optimise the logit."""
    return _term("class_prob", index=_index(cls, "class index"))


def direction(layer: str, vector: ArrayLike) -> Objective:
    """The activation of ``layer`` projected on ``vector`` (``(C,)``, or ``(B, C)``: one per image), averaged over positions."""
    v = np.asarray(vector, np.float32)
    if v.ndim not in (1, 2):
        raise ShapeError(f"direction vector must be (C,) or (B, C); got shape {v.shape}.")
    return _term("direction", layer, vector=v)


def diversity(layer: str) -> Objective:
    """Minus the mean cosine similarity of each image's Gram matrix of ``layer`` with the others' (Olah et al. 2017).

    Add it with a weight to a batch objective to get different images of the same unit.
    """
    return _term("diversity", layer)


def weighted(objective: Objective, weights: ArrayLike) -> Objective:
    """``objective`` with one weight per image, ``weights`` ``(B,)``: e.g. one-hot blocks to render
    different objectives (channels of different layers) in one batch."""
    w = np.asarray(weights, np.float32)
    if w.ndim != 1:
        raise ShapeError(f"weighted takes one weight per image, shape (B,); got shape {w.shape}.")
    return Objective(tuple(dataclasses.replace(x, weight=np.asarray(x.weight, np.float32) * w) for x in objective.terms))


def interpolate(a: Objective, b: Objective, batch: int) -> Objective:
    """``(1 - t) a + t b`` with ``t`` going 0..1 across a batch of ``batch`` images (shared parameters not required)."""
    if not isinstance(a, Objective) or not isinstance(b, Objective):
        raise JaxvizError("interpolate takes two objectives.")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 2:
        raise JaxvizError(f"interpolate needs a batch of at least 2 images; got {batch!r}.")
    t = np.linspace(0.0, 1.0, batch, dtype=np.float32)
    return weighted(a, 1 - t) + weighted(b, t)
