"""Shared plumbing of :mod:`jaxviz.inspect`: the one call into the model's activations, checks."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxviz.attribution._common import check_choice, check_positive  # noqa: F401 - shared with jaxviz.inspect
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models.contract import Model


def layer_activations(model: Model, x: jax.Array, layers: Sequence[str]) -> dict[str, jax.Array]:
    """``{layer: activation}`` of a pixel batch: the only place :mod:`jaxviz.inspect` runs a model."""
    return model.activations(x, tuple(layers))


def require_model(model) -> Model:
    if not isinstance(model, Model):
        raise JaxvizError(
            "jaxviz.inspect needs a jaxviz Model with named layers (wrap other networks with "
            f"jaxviz.models.from_nnx / from_linen / from_functions); got {type(model).__name__}."
        )
    return model


def check_layers(model: Model, layers: str | Sequence[str] | None) -> tuple[str, ...]:
    """``layers`` as a tuple (``None``: every layer), unknown names rejected with the valid ones listed."""
    if layers is None:
        return tuple(model.layers)
    if isinstance(layers, str):
        layers = (layers,)
    layers = model.check_layers(layers)
    if not layers:
        raise JaxvizError(f"no layers given; choose from: {', '.join(model.layers)}.")
    return layers


def check_batch(model: Model, x, what: str = "images") -> np.ndarray:
    """A non-empty float32 NHWC pixel batch as numpy (shape checked against the model)."""
    shape = np.shape(x)
    if len(shape) >= 1 and shape[0] == 0:
        raise ShapeError(f"the {what} are empty (shape {shape}); pass at least one image.")
    x = model.check_input(x)
    return np.asarray(x)


def check_channel(layer: str, channels: int, channel: int) -> int:
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < channels:
        raise JaxvizError(f"channel {channel!r} is out of range for layer {layer!r} with {channels} channels (0..{channels - 1}).")
    return int(channel)


def flatten_features(a: jax.Array) -> jax.Array:
    """``(B, ...)`` activations as ``(B, D)`` feature vectors."""
    return a.reshape(a.shape[0], -1)


def pad_batch(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` padded along axis 0 to ``size`` rows (repeating row 0) and the validity mask."""
    n = len(x)
    valid = np.arange(size) < n
    if n == size:
        return x, valid
    return np.concatenate([x, np.repeat(x[:1], size - n, axis=0)]), valid
