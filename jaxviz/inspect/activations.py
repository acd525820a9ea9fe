"""Activations as pictures, their sparsity and their distributions (Yosinski et al., "Understanding
Neural Networks Through Deep Visualization", ICML DL workshop 2015; Karpathy, CS231n "Visualizing
what ConvNets learn": ReLU maps start dense and blobby and become sparse and localised deeper in).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import ShapeError
from jaxviz.inspect._common import check_batch, check_choice, check_layers, check_positive, layer_activations, require_model


def activation_maps(model, image, layer: str, *, normalize: str = "per_channel") -> np.ndarray:
    """Every channel of ``layer`` for one image as grey tiles ``(C, h, w, 1)`` in ``[0, 1]``.

    Args:
      image: ``(H, W, C)`` pixels or a batch of one.
      normalize: ``"per_channel"`` stretches each map to its own maximum; ``"shared"`` divides every map
        by the layer's maximum, so weak channels look weak. Negative values (layers without ReLU)
        are shifted so that the minimum is black.
    """
    model = require_model(model)
    x = np.asarray(image)
    x = x[None] if x.ndim == 3 else x
    if x.shape[0] != 1:
        raise ShapeError(f"activation_maps shows one image; got a batch of {x.shape[0]}. Pass images[i].")
    layer = check_layers(model, layer)[0]
    a = np.asarray(_acts(model, jnp.asarray(check_batch(model, x)), (layer,))[layer])[0]
    if a.ndim != 3:
        raise ShapeError(f"layer {layer!r} has activations of shape {a.shape} per image, not (h, w, C) maps; pick a convolutional layer.")
    check_choice("normalize", normalize, ("per_channel", "shared"))
    maps = np.moveaxis(a, -1, 0)  # (C, h, w)
    axes = (1, 2) if normalize == "per_channel" else (0, 1, 2)
    lo = np.minimum(maps.min(axis=axes, keepdims=True), 0.0)
    hi = maps.max(axis=axes, keepdims=True)
    return ((maps - lo) / np.where(hi > lo, hi - lo, 1.0))[..., None].astype(np.float32)


@functools.partial(jax.jit, static_argnames=("layers",))
def _acts(model, x, layers):
    return layer_activations(model, x, layers)


@functools.partial(jax.jit, static_argnames=("layers",))
def _zero_counts(model, x, valid, layers):
    acts = layer_activations(model, x, layers)
    out = {}
    for name in layers:
        a = acts[name].reshape(x.shape[0], -1)
        out[name] = (jnp.sum(jnp.where(valid[:, None], a == 0, False)), jnp.sum(valid) * a.shape[1])
    return out


def zero_fraction(model, x, layers: str | Sequence[str] | None = None, *, batch_size: int = 256) -> dict[str, float]:
    """Fraction of exact zeros in each layer's activations over the batch ``x`` (the ReLU sparsity).

    Computed in compiled batches of ``batch_size``; returns ``{layer: fraction}`` in layer order.
    """
    model = require_model(model)
    layers = check_layers(model, layers)
    x = check_batch(model, x)
    batch_size = min(check_positive("batch_size", batch_size), len(x))
    zeros = dict.fromkeys(layers, 0)
    total = dict.fromkeys(layers, 0)
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        valid = np.arange(batch_size) < len(chunk)
        chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - len(chunk), axis=0)]) if len(chunk) < batch_size else chunk
        for name, (z, n) in _zero_counts(model, chunk, valid, layers).items():
            zeros[name] += int(z)
            total[name] += int(n)
    return {name: zeros[name] / total[name] for name in layers}


class Histogram(NamedTuple):
    """Activation histogram of one layer over a batch.

    Attributes:
      edges: ``(bins + 1,)`` bin edges spanning the layer's range.
      counts: ``(bins,)`` counts over every value of the layer.
      channel_counts: ``(C, bins)`` counts per channel (last axis of the activation), same edges.
      zero_fraction: fraction of exact zeros (they fall in the first bin after a ReLU).
    """

    edges: np.ndarray
    counts: np.ndarray
    channel_counts: np.ndarray
    zero_fraction: float


@functools.partial(jax.jit, static_argnames=("layers", "bins"))
def _histograms(model, x, layers, bins):
    acts = layer_activations(model, x, layers)
    out = {}
    for name in layers:
        a = acts[name]
        flat = a.reshape(-1, a.shape[-1])  # (values per channel, C)
        lo, hi = flat.min(), flat.max()
        hi = jnp.where(hi > lo, hi, lo + 1.0)
        idx = jnp.clip(jnp.floor((flat - lo) / (hi - lo) * bins).astype(jnp.int32), 0, bins - 1)
        cell = idx + bins * jnp.arange(flat.shape[1], dtype=jnp.int32)[None, :]
        counts = jnp.zeros((flat.shape[1] * bins,), jnp.int32).at[cell.reshape(-1)].add(1)
        out[name] = (jnp.linspace(lo, hi, bins + 1), counts.reshape(flat.shape[1], bins), jnp.mean(flat == 0))
    return out


def activation_histograms(model, x, layers: str | Sequence[str] | None = None, *, bins: int = 50) -> dict[str, Histogram]:
    """Per-layer and per-channel histograms of activations over the batch ``x``.

    Each layer gets ``bins`` equal bins over its own range; the per-channel counts share them. One
    compiled pass computes every layer.
    """
    model = require_model(model)
    layers = check_layers(model, layers)
    bins = check_positive("bins", bins)
    x = jnp.asarray(check_batch(model, x))
    out = {}
    for name, (edges, cc, zf) in _histograms(model, x, layers, bins).items():
        cc = np.asarray(cc)
        out[name] = Histogram(np.asarray(edges), cc.sum(axis=0), cc, float(zf))
    return out
