"""Receptive fields computed from the network itself, not typed in per model.

The network is traced to a jaxpr and re-evaluated as a positive linear map with the same
geometry: every parameter replaced by its absolute value, ReLUs (``max(x, 0)``) by the identity,
subtractions and negations by additions and the identity, max pooling by sum pooling over the same
windows. In that map no path's contribution can cancel another's, so the support of the input
gradient of one unit is exactly the set of pixels any path reaches: its receptive field
(Zeiler & Fergus 2014 and Girshick et al. 2014 crop top-activating images to it). Two interior
units per axis give the size, the stride and the offset; units near the border have their box
clipped to the image (padding).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.attribution._jaxpr import Interpreter, is_concrete_zero
from jaxviz.errors import ShapeError
from jaxviz.inspect._common import layer_activations, require_model


class ReceptiveField(NamedTuple):
    """Geometry of a layer's units in input pixels: unit ``(i, j)`` sees rows
    ``offset[0] + i * stride[0]`` up to (excluding) that plus ``size[0]``, and likewise columns,
    clipped to the image. ``offset`` is negative where the network pads."""

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[int, int]

    def box(self, i: int, j: int, image_hw: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` (bottom/right exclusive) of unit ``(i, j)``, clipped to ``image_hw`` if given."""
        top, left = self.offset[0] + i * self.stride[0], self.offset[1] + j * self.stride[1]
        bottom, right = top + self.size[0], left + self.size[1]
        if image_hw is not None:
            top, left = max(top, 0), max(left, 0)
            bottom, right = min(bottom, image_hw[0]), min(right, image_hw[1])
        return top, left, bottom, right


class _Linearise(Interpreter):
    """Evaluates a jaxpr as the positive linear map with the same geometry (see the module doc)."""

    def rule(self, eqn, vals, tags):
        name = eqn.primitive.name
        if name == "max" and (is_concrete_zero(vals[1]) or is_concrete_zero(vals[0])):
            return [vals[0] if is_concrete_zero(vals[1]) else vals[1]]
        if name == "sub":
            return [jax.lax.add(*vals)]
        if name == "neg":
            return [vals[0]]
        if name == "reduce_window_max":
            p = eqn.params
            out = jax.lax.reduce_window(vals[0], 0.0, jax.lax.add, p["window_dimensions"], p["window_strides"], p["padding"],
                                        p["base_dilation"], p["window_dilation"])
            return [out]
        if name == "reduce_max":
            return [jnp.sum(vals[0], axis=eqn.params["axes"])]
        return None


def _probe_units(n: int) -> np.ndarray:
    """Unit indices on an axis of ``n`` units to trace: both ends and the middle, in neighbouring pairs."""
    m = n // 2
    return np.unique(np.clip([0, 1, 2, m - 1, m, m + 1, n - 3, n - 2, n - 1], 0, n - 1))


def _supports(model, layer: str, hw: tuple[int, int], shape: tuple[int, ...]):
    """``(ki, rows, kj, cols)``: row extents ``[lo, hi)`` of units ``ki`` down the middle column and
    column extents of units ``kj`` along the middle row of ``layer``, from their input supports."""
    c = model.input_shape[-1]
    params = jax.tree.map(jnp.abs, model.params)

    def feature(p, x):
        return layer_activations(model.replace(params=p), x, [layer])[layer]

    x = jnp.ones((1, *hw, c), jnp.float32)
    closed = jax.make_jaxpr(feature)(params, x)
    flat_params = jax.tree.leaves(params)

    def linear(x):
        outs, _ = _Linearise().run(closed.jaxpr, closed.consts, [*flat_params, x], [None] * (len(flat_params) + 1))
        return outs[0]

    _, h, w, _ = shape
    ki, kj = _probe_units(h), _probe_units(w)
    units = [(i, w // 2) for i in ki] + [(h // 2, j) for j in kj]
    cts = jnp.stack([jnp.zeros((1, h, w, shape[3]), jnp.float32).at[0, i, j, :].set(1.0) for i, j in units])

    @jax.jit
    def support(cts):
        _, vjp = jax.vjp(linear, x)
        return jax.vmap(lambda ct: jnp.abs(vjp(ct)[0][0]).sum(-1) > 0)(cts)

    masks = np.asarray(support(cts))
    rows = np.array([_extent(m.any(axis=1)) for m in masks[: len(ki)]])
    cols = np.array([_extent(m.any(axis=0)) for m in masks[len(ki) :]])
    return ki, rows, kj, cols


def _extent(line: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(line)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


def _axis_geometry(k: np.ndarray, ext: np.ndarray) -> tuple[int, int, int] | None:
    """``(size, stride, offset)`` from the ``[lo, hi)`` extents of units ``k`` on one axis, using only
    sides that cannot be clipped by the border; ``None`` if they do not determine it."""
    lo, hi = ext[:, 0], ext[:, 1]
    # a side at the outermost extent seen may be cut by the border (or by pixels no unit reaches)
    free_lo, free_hi = lo > lo.min(), hi < hi.max()
    pairs = [i for i in range(len(k) - 1) if k[i + 1] == k[i] + 1]
    steps = [lo[i + 1] - lo[i] for i in pairs if free_lo[i] and free_lo[i + 1]]
    steps += [hi[i + 1] - hi[i] for i in pairs if free_hi[i] and free_hi[i + 1]]
    if not steps or min(steps) <= 0:
        return None
    stride = int(np.median(steps))
    if not free_lo.any():
        return None
    offset = int(lo[free_lo][0] - k[free_lo][0] * stride)
    both = free_lo & free_hi
    if both.any():
        size = int((hi - lo)[both][0])
    elif free_hi.any():
        size = int(hi[free_hi][0] - offset - k[free_hi][0] * stride)
    else:
        return None
    return size, stride, offset


def receptive_field(model, layer: str) -> ReceptiveField:
    """The receptive field of ``layer``'s units, from the gradient support of the linearised network.

    Units along the middle row and column of the layer are traced back to the input at the model's
    ``input_shape``; their extents give the size, stride and offset. Where every unit sees the whole
    input (global pooling or normalisation before the layer, or a field wider than the image) the
    result is the whole image with stride 0.

    Raises:
      ShapeError: for a layer without spatial axes (a dense layer sees the whole image).
    """
    model = require_model(model)
    layer = model.check_layers([layer])[0]
    if model.input_shape is None:
        raise ShapeError(f"{model.name} has no input_shape, so its receptive fields cannot be traced.")
    hw = tuple(model.input_shape[:2])
    shape = model.layer_shapes()[layer]
    if len(shape) != 4:
        raise ShapeError(f"layer {layer!r} has shape {shape} without spatial axes: its units see the whole image, so there is no receptive-field crop; pick a convolutional layer.")
    ki, rows, kj, cols = _supports(model, layer, hw, shape)
    geo = [_axis_geometry(ki, rows), _axis_geometry(kj, cols)]
    if None in geo:
        return ReceptiveField(hw, (0, 0), (0, 0))
    (sh, th, oh), (sw, tw, ow) = geo
    return ReceptiveField((sh, sw), (th, tw), (oh, ow))
