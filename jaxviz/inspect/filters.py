"""Weights as pictures and a number for how structured they are.

A trained network's first-layer filters are smooth, oriented edge and colour-blob detectors;
noisy, unstructured filters mean the network trained too little (Krizhevsky et al. 2012, Fig. 3;
Zeiler & Fergus 2014, Fig. 6; Karpathy, CS231n "Visualizing what ConvNets learn").
:func:`filter_structure` measures it as the correlation of spatially adjacent weights: about 0 for
independent zero-mean random weights, towards 1 for smooth filters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.inspect._common import check_choice, require_model


def conv_kernels(model) -> dict[str, np.ndarray]:
    """Every convolution kernel (4-D ``(kh, kw, in, out)`` parameter) of ``model``, keyed by path.

    Paths join the parameter tree's keys with ``/`` (``"conv1"``, ``"fires/fire2/expand3x3"``); the
    order is the parameter tree's.
    """
    model = require_model(model)
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(model.params)[0]:
        keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        if keys and keys[-1] == "value":  # nnx.Param leaves
            keys = keys[:-1]
        if np.ndim(leaf) == 4 and keys and keys[-1] == "kernel":
            out["/".join(keys[:-1])] = np.asarray(leaf)
    return out


def first_kernel(model) -> tuple[str, np.ndarray]:
    """``(path, kernel)`` of the convolution applied to the input pixels (its ``in`` equals the input channels)."""
    model = require_model(model)
    kernels = conv_kernels(model)
    channels = model.input_shape[-1] if model.input_shape else None
    for name, k in kernels.items():
        if channels is None or k.shape[2] == channels:
            return name, k
    raise JaxvizError(f"{model.name} has no convolution kernel on its {channels}-channel input; kernels: {', '.join(kernels) or '(none)'}.")


def kernel_of(model, name: str) -> np.ndarray:
    """The kernel at path ``name`` (see :func:`conv_kernels`), or an error listing the valid paths."""
    kernels = conv_kernels(model)
    if name not in kernels:
        raise JaxvizError(f"{require_model(model).name} has no convolution kernel {name!r}; valid kernels: {', '.join(kernels) or '(none)'}.")
    return kernels[name]


def _check_kernel(kernel: ArrayLike) -> np.ndarray:
    k = np.asarray(kernel, np.float32)
    if k.ndim != 4:
        raise ShapeError(f"a convolution kernel has shape (kh, kw, in, out); got shape {k.shape}.")
    if k.size == 0:
        raise ShapeError(f"the kernel is empty (shape {k.shape}).")
    return k


def filter_images(kernel: ArrayLike, *, normalize: str = "per_filter", per_input_channel: bool | None = None) -> np.ndarray:
    """Kernels ``(kh, kw, in, out)`` as images in ``[0, 1]`` for :func:`jaxviz.viz.image_grid`.

    With 1 or 3 input channels (a first layer) each output filter is one grey or RGB tile:
    ``(out, kh, kw, in)``. Deeper kernels (or ``per_input_channel=True``) give one grey tile per
    (output, input) pair, output-major: ``(out * in, kh, kw, 1)`` (lay them out with ``ncols=in``).

    Args:
      normalize: ``"per_filter"`` stretches each output filter to ``[0, 1]`` on its own; ``"shared"``
        uses one symmetric scale for all (zero is mid-grey), so magnitudes compare across filters.
    """
    k = _check_kernel(kernel)
    check_choice("normalize", normalize, ("per_filter", "shared"))
    kh, kw, cin, cout = k.shape
    tiles = np.moveaxis(k, -1, 0)  # (out, kh, kw, in)
    if normalize == "shared":
        scale = np.abs(tiles).max() or 1.0
        tiles = 0.5 + 0.5 * tiles / scale
    else:
        lo = tiles.min(axis=(1, 2, 3), keepdims=True)
        hi = tiles.max(axis=(1, 2, 3), keepdims=True)
        tiles = (tiles - lo) / np.where(hi > lo, hi - lo, 1.0)
    if per_input_channel is None:
        per_input_channel = cin not in (1, 3)
    if per_input_channel:
        tiles = np.moveaxis(tiles, -1, 1).reshape(cout * cin, kh, kw, 1)
    return tiles.astype(np.float32)


@jax.jit
def _neighbour_correlation(k: jax.Array) -> jax.Array:
    s = jnp.moveaxis(k.reshape(k.shape[0], k.shape[1], -1), -1, 0)  # (n, kh, kw) slices
    pairs = [(s[:, 1:, :], s[:, :-1, :]), (s[:, :, 1:], s[:, :, :-1])]
    num = sum(jnp.sum(a * b) for a, b in pairs)
    den = sum(jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b)) for a, b in pairs)
    return num / jnp.maximum(den, 1e-30)


def filter_structure(kernel: ArrayLike) -> float:
    """How smooth convolution kernels ``(kh, kw, in, out)`` are: the correlation of adjacent weights.

    ``sum(w[i] w[i+1]) / sqrt(sum(w[i]^2) sum(w[i+1]^2))`` pooled over horizontally and vertically
    adjacent pairs of every 2-D ``kh x kw`` slice (one per input/output channel pair). Independent
    zero-mean random weights give about 0; the smooth edge and colour-blob filters of a trained
    first layer (Krizhevsky et al. 2012, Fig. 3; Zeiler & Fergus 2014, Fig. 6) give clearly more, up
    to 1 for constant filters; noisy filters mean the network trained too little.

    Returns:
      the correlation as a Python float in ``[-1, 1]``.
    """
    k = _check_kernel(kernel)
    if k.shape[0] < 2 or k.shape[1] < 2:
        raise ShapeError(f"kernels of spatial size {k.shape[0]}x{k.shape[1]} have no spatial structure to measure; pick a kernel of at least 2x2.")
    return float(_neighbour_correlation(jnp.asarray(k)))


