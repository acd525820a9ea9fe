"""Top-k data-set examples per unit: which inputs excite a channel most (Zeiler & Fergus, "Visualizing
and Understanding Convolutional Networks", ECCV 2014, Fig. 2; Girshick et al., "Rich feature
hierarchies for accurate object detection", CVPR 2014, Fig. 4).

A data set is streamed through the model in fixed-size batches by one compiled step that merges
each batch's per-channel scores into a running top-k, so memory does not grow with the data set
and every batch reuses the same program. Each entry keeps the example's index and the argmax
position of the channel's map, for receptive-field crops.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.inspect._common import check_batch, check_channel, check_choice, check_layers, check_positive, layer_activations, pad_batch, require_model
from jaxviz.inspect.receptive import ReceptiveField, receptive_field


class TopK(NamedTuple):
    """The ``k`` strongest examples of every channel of one layer, best first.

    Attributes:
      values: ``(C, k)`` scores (max or mean of the channel's map over space; the unit for dense layers).
      indices: ``(C, k)`` example indices in the streamed data set.
      positions: ``(C, k, 2)`` ``(i, j)`` of the channel's maximum in that example's map (``(0, 0)``
        for dense layers).
    """

    values: np.ndarray
    indices: np.ndarray
    positions: np.ndarray


def _channel_scores(a: jax.Array, reduce: str) -> jax.Array:
    """``(B, C)`` scores of activations ``(B, h, w, C)`` (max or mean over space) or ``(B, C)``."""
    if a.ndim == 2:
        return a
    if a.ndim != 4:
        raise ShapeError(f"top-k needs activations (B, h, w, C) or (B, C); got shape {a.shape}.")
    return a.max(axis=(1, 2)) if reduce == "max" else a.mean(axis=(1, 2))


def _merge(state: TopK, a: jax.Array, score: jax.Array, index: jax.Array, valid: jax.Array) -> TopK:
    """Merge a batch's ``(B, C)`` scores into the running top-k ``(C, k)``.

    The argmax position is computed only for the batch's winners (a ``(C, k)`` gather of their maps),
    not for every image and channel.
    """
    k = state.values.shape[1]
    score = jnp.where(valid[:, None], score, -jnp.inf).T  # (C, B)
    values = jnp.concatenate([state.values, score], axis=1)
    indices = jnp.concatenate([state.indices, jnp.broadcast_to(index[None, :], score.shape)], axis=1)
    top, order = jax.lax.top_k(values, k)
    from_batch = order >= k
    if a.ndim == 2:
        new_pos = jnp.zeros((*order.shape, 2), jnp.int32)
    else:
        _, h, w, c = a.shape
        image = jnp.clip(order - k, 0, a.shape[0] - 1)  # (C, k)
        maps = a.reshape(a.shape[0], h * w, c)[image, :, jnp.arange(c)[:, None]]  # (C, k, h * w)
        arg = jnp.argmax(maps, axis=-1).astype(jnp.int32)
        new_pos = jnp.stack([arg // w, arg % w], axis=-1)
    old_pos = jnp.take_along_axis(state.positions, jnp.minimum(order, k - 1)[..., None], axis=1)
    positions = jnp.where(from_batch[..., None], new_pos, old_pos)
    return TopK(top, jnp.take_along_axis(indices, order, axis=1), positions)


@functools.partial(jax.jit, static_argnames=("layers", "reduce"))
def topk_step(model, state: dict[str, TopK], x: jax.Array, index: jax.Array, valid: jax.Array, *, layers: tuple[str, ...], reduce: str) -> dict[str, TopK]:
    """One streaming step: the running top-k of every layer merged with batch ``x`` (examples ``index``).

    Pure and compiled once per batch shape; ``valid`` masks the padding of a short last batch. A batch
    sharded over devices on its leading axis runs through the model where it lives; its activations
    are then gathered for the merge.
    """
    acts = layer_activations(model, x, layers)
    out = {}
    for name in layers:
        a = acts[name]
        score = _channel_scores(a, reduce).astype(jnp.float32)
        a, score, idx, ok = (_gathered(v) for v in (a, score, index, valid))
        out[name] = _merge(state[name], a, score, idx, ok)
    return out


def _gathered(a: jax.Array) -> jax.Array:
    """``a`` replicated when it is sharded over an explicit mesh axis (the running top-k is replicated)."""
    sharding = jax.typeof(a).sharding
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty or not any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
        return a
    return jax.sharding.reshard(a, jax.sharding.PartitionSpec())


def _empty(channels: int, k: int) -> TopK:
    return TopK(np.full((channels, k), -np.inf, np.float32), np.full((channels, k), -1, np.int32), np.zeros((channels, k, 2), np.int32))


def top_k(
    model,
    data: np.ndarray | Iterable[np.ndarray],
    layers: str | Sequence[str] | None = None,
    *,
    k: int = 9,
    reduce: str = "max",
    batch_size: int = 256,
    sharding: jax.sharding.Sharding | None = None,
) -> dict[str, TopK]:
    """Stream ``data`` through ``model`` and keep each channel's ``k`` strongest examples, per layer.

    Args:
      model: a :class:`~jaxviz.models.Model`.
      data: an ``(N, H, W, C)`` pixel array, or an iterable of such batches (each at most
        ``batch_size``; e.g. ``jaxviz.data.batches(x)``), so the data set never has to be in memory.
      layers: layer names (default: every layer); dense layers rank their units directly.
      k: examples kept per channel (at most the data-set size).
      reduce: ``"max"`` or ``"mean"`` of each channel's map over space (the argmax position is
        recorded either way).
      batch_size: examples per compiled step; a short batch is padded and masked, so one program
        serves the whole stream.
      sharding: optional sharding for each batch (e.g. ``NamedSharding(mesh, P("batch"))``) to spread
        the forward passes over devices; results are the same as on one device.

    Returns:
      ``{layer: TopK}`` with numpy arrays, best first. Ties keep the earlier example.
    """
    model = require_model(model)
    layers = check_layers(model, layers)
    k = check_positive("k", k)
    batch_size = check_positive("batch_size", batch_size)
    check_choice("reduce", reduce, ("max", "mean"))
    if isinstance(data, np.ndarray) or hasattr(data, "shape"):
        if len(data) == 0:
            raise ShapeError(f"the data set is empty (shape {np.shape(data)}); pass at least {k} images.")
        if k > len(data):
            raise JaxvizError(f"k={k} is larger than the data set ({len(data)} images); use k <= {len(data)}.")
        stream = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
    else:
        stream = iter(data)
    state = None
    seen = 0
    in_flight: list = []  # JAX dispatches asynchronously: bound the batches queued ahead of the device
    for batch in stream:
        batch = check_batch(model, batch, "data")
        if len(batch) > batch_size:
            raise ShapeError(f"a batch of {len(batch)} images is larger than batch_size={batch_size}.")
        if state is None:
            shapes = model.layer_shapes(jax.ShapeDtypeStruct((1, *batch.shape[1:]), jnp.float32))
            for name in layers:
                if len(shapes[name]) not in (2, 4):
                    raise ShapeError(f"layer {name!r} has shape {shapes[name]}; top-k needs (B, h, w, C) or (B, C) activations.")
            home = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec()) if isinstance(sharding, jax.sharding.NamedSharding) else jax.devices()[0]
            state = jax.device_put({name: _empty(shapes[name][-1], k) for name in layers}, home)  # placed like the step's outputs
        x, valid = pad_batch(batch, batch_size)
        index = np.arange(seen, seen + batch_size, dtype=np.int32)
        if sharding is not None:
            x, index, valid = (jax.device_put(a, sharding) for a in (x, index, valid))
        state = topk_step(model, state, x, index, valid, layers=layers, reduce=reduce)
        in_flight.append(state)
        if len(in_flight) > 2:
            jax.block_until_ready(in_flight.pop(0))
        seen += len(batch)
    if state is None:
        raise ShapeError("the data set is empty: the stream gave no batches.")
    if k > seen:
        raise JaxvizError(f"k={k} is larger than the data set ({seen} images); use k <= {seen}.")
    return {name: TopK(*(np.asarray(a) for a in state[name])) for name in layers}


def crop(image: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], fill: float = 1.0) -> np.ndarray:
    """``image[top:bottom, left:right]`` for a box that may overhang the border, as a ``size`` tile
    (the overhang filled with ``fill``, so every crop of a layer has the receptive field's size)."""
    top, left, bottom, right = box
    h, w = image.shape[:2]
    out = np.full((*size, image.shape[2]), fill, np.float32)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if b > t and r > lft:
        out[t - top : b - top, lft - left : r - left] = image[t:b, lft:r]
    return out


class TopKExamples(NamedTuple):
    """Images of one channel's top examples: ``images (k, H, W, C)``, ``crops (k, h, w, C)`` around the
    argmax (receptive-field size), ``values (k,)``, ``indices (k,)`` and the ``field`` used."""

    images: np.ndarray
    crops: np.ndarray
    values: np.ndarray
    indices: np.ndarray
    field: ReceptiveField


def top_examples(model, data: np.ndarray, topk: TopK, layer: str, channel: int, *, field: ReceptiveField | None = None) -> TopKExamples:
    """The images and receptive-field crops of ``channel``'s top examples (``topk`` from :func:`top_k`
    on ``data``, for convolutional ``layer``); pass ``field`` to reuse a :func:`receptive_field`."""
    model = require_model(model)
    channel = check_channel(layer, topk.values.shape[0], channel)
    field = receptive_field(model, layer) if field is None else field
    idx = topk.indices[channel]
    images = np.asarray(data[idx], np.float32)
    hw = images.shape[1:3]
    size = tuple(min(s, n) if st == 0 else s for s, st, n in zip(field.size, field.stride, hw))
    crops = np.stack([crop(img, field.box(int(i), int(j)), size) for img, (i, j) in zip(images, topk.positions[channel])])
    return TopKExamples(images, crops, topk.values[channel], idx, field)


@functools.partial(jax.jit, static_argnames=("layer", "method"))
def _projections(model, x, channel, positions, *, layer, method):
    from jaxviz.attribution import replace_relu_grad

    feat = replace_relu_grad(lambda xx: layer_activations(model, xx, (layer,))[layer], method)
    a, vjp = jax.vjp(feat, x)
    if a.ndim == 2:
        mask = jax.nn.one_hot(channel, a.shape[1], dtype=bool)
    else:
        b, h, w, c = a.shape
        where = jax.nn.one_hot(positions[:, 0] * w + positions[:, 1], h * w, dtype=bool).reshape(b, h, w, 1)
        mask = where & jax.nn.one_hot(channel, c, dtype=bool)[:, None, None, :]
    (proj,) = vjp(jnp.where(mask, a, jnp.zeros_like(a)))
    return proj


def top_projections(model, data: np.ndarray, topk: TopK, layer: str, channel: int, *, method: str = "deconvnet") -> np.ndarray:
    """Projections to pixel space of ``channel`` on each of its top examples, at the recorded argmax
    (Zeiler & Fergus 2014, Fig. 2: "the neurons along the way to the top"): the backward pass from
    that one unit with every other activation zeroed and ReLUs replaced by ``method`` (``"deconvnet"``,
    ``"guided"`` or ``"gradient"``), as :func:`jaxviz.attribution.unit_projection` does for a fixed
    unit; here every example has its own unit, in one compiled call. Returns ``(k, H, W, C)``."""
    model = require_model(model)
    layer = check_layers(model, layer)[0]
    check_choice("method", method, ("deconvnet", "guided", "gradient"))
    channel = check_channel(layer, topk.values.shape[0], channel)
    images = jnp.asarray(np.asarray(data[topk.indices[channel]], np.float32))
    k = images.shape[0]
    proj = _projections(model, images, jnp.full((k,), channel, jnp.int32), jnp.asarray(topk.positions[channel]), layer=layer, method=method)
    return np.asarray(proj)
