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

from jaxviz.errors import ShapeError
from jaxviz.inspect._common import layer_activations, require_model
from jaxviz.jaxpr import Interpreter, is_concrete_zero


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


def _supports(model, layers: tuple[str, ...], hw: tuple[int, int], shapes: dict[str, tuple[int, ...]]) -> dict:
    """``{layer: (ki, rows, kj, cols)}``: row extents ``[lo, hi)`` of units ``ki`` down the middle
    column and column extents of units ``kj`` along the middle row, from their input supports.
    One trace and one compiled program serve every layer."""
    c = model.input_shape[-1]
    params = jax.tree.map(lambda a: np.abs(np.asarray(a)), model.params)

    def feature(p, x):
        acts = layer_activations(model.replace(params=p), x, layers)
        return [acts[n] for n in layers]

    x = jnp.ones((1, *hw, c), jnp.float32)
    closed = jax.make_jaxpr(feature)(params, x)
    flat_params = jax.tree.leaves(params)

    def linear(flat_params, x):
        outs, _ = _Linearise().run(closed.jaxpr, closed.consts, [*flat_params, x], [None] * (len(flat_params) + 1))
        return outs

    probes, cts = {}, []
    for n in layers:
        _, h, w, ch = shapes[n]
        ki, kj = _probe_units(h), _probe_units(w)
        units = [(i, w // 2) for i in ki] + [(h // 2, j) for j in kj]
        ct = np.zeros((len(units), 1, h, w, ch), np.float32)
        for u, (i, j) in enumerate(units):
            ct[u, 0, i, j, :] = 1.0
        probes[n] = (ki, kj)
        cts.append(ct)

    @jax.jit  # parameters and input are arguments, not constants: XLA would fold the whole net
    def support(flat_params, x, cts):
        outs, vjp = jax.vjp(lambda xx: linear(flat_params, xx), x)
        masks = []
        for li, ct in enumerate(cts):
            def one(c, li=li):
                full = [c if m == li else jnp.zeros_like(o) for m, o in enumerate(outs)]
                return jnp.abs(vjp(full)[0][0]).sum(-1) > 0
            masks.append(jax.vmap(one)(ct))
        return masks

    out = {}
    for n, masks in zip(layers, support(flat_params, x, cts)):
        masks = np.asarray(masks)
        ki, kj = probes[n]
        rows = np.array([_extent(m.any(axis=1)) for m in masks[: len(ki)]])
        cols = np.array([_extent(m.any(axis=0)) for m in masks[len(ki) :]])
        out[n] = (ki, rows, kj, cols)
    return out


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


def receptive_fields(model, layers: str | tuple[str, ...] | list[str] | None = None) -> dict[str, ReceptiveField]:
    """The receptive field of each spatial layer in ``layers`` (default: every layer with spatial
    axes), from the gradient support of the linearised network (see the module doc).

    Units along the middle row and column (and near the borders) of each layer are traced back to
    the input at the model's ``input_shape``; their extents give the size, the stride and the
    offset. Where every unit sees the whole input (global pooling or normalisation before the
    layer, or a field wider than the image) the result is the whole image with stride 0. All
    layers share one trace and one compiled program.

    Raises:
      ShapeError: for a layer without spatial axes (a dense layer sees the whole image).
    """
    model = require_model(model)
    if model.input_shape is None:
        raise ShapeError(f"{model.name} has no input_shape, so its receptive fields cannot be traced.")
    shapes = model.layer_shapes()
    if layers is None:
        layers = tuple(n for n in model.layers if len(shapes[n]) == 4)
    else:
        layers = model.check_layers([layers] if isinstance(layers, str) else layers)
    for n in layers:
        if len(shapes[n]) != 4:
            raise ShapeError(f"layer {n!r} has shape {shapes[n]} without spatial axes: its units see the whole image, so there is no receptive-field crop; pick a convolutional layer.")
    if not layers:
        return {}
    hw = tuple(model.input_shape[:2])
    out = {}
    for n, (ki, rows, kj, cols) in _supports(model, tuple(layers), hw, shapes).items():
        geo = [_axis_geometry(ki, rows), _axis_geometry(kj, cols)]
        if None in geo:
            out[n] = ReceptiveField(hw, (0, 0), (0, 0))
        else:
            (sh, th, oh), (sw, tw, ow) = geo
            out[n] = ReceptiveField((sh, sw), (th, tw), (oh, ow))
    return out


def receptive_field(model, layer: str) -> ReceptiveField:
    """The receptive field of ``layer``'s units (see :func:`receptive_fields`).

    Raises:
      ShapeError: for a layer without spatial axes (a dense layer sees the whole image).
    """
    return receptive_fields(model, [layer])[layer]
