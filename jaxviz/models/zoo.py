"""Small classifiers of the visualisation and dataset-distillation literature, in flax NNX.

* :class:`LeNet` -- LeNet-5 as used by Wang et al., "Dataset Distillation" (2018): two 5x5
  convolutions with max pooling, three fully connected layers.
* :class:`ConvNet` -- the 3-block ConvNet of Zhao et al., "Dataset Condensation with Gradient
  Matching" (2021) and its successors: [conv 3x3 (width 128), instance norm, ReLU, 2x2 average
  pooling] x 3, then a linear classifier.

Both accept 28x28x1 and 32x32x3 inputs; :func:`lenet` and :func:`convnet` return them wrapped in
the library's :class:`~jaxviz.models.contract.Model` contract with fresh weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxviz.errors import ShapeError
from jaxviz.models.contract import Model, Taps
from jaxviz.models.nnx_module import model_from_module
from jaxviz.models.ops import avg_pool, conv_general_dilated, max_pool


class LeNet(nnx.Module):
    """LeNet-5 (LeCun et al. 1998) in the variant of Wang et al. (2018): ReLU, max pooling."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, *, rngs: nnx.Rngs):
        pad = 2 if image_size == 28 else 0
        self.conv1 = nnx.Conv(in_channels, 6, (5, 5), padding=[(pad, pad), (pad, pad)], conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.conv2 = nnx.Conv(6, 16, (5, 5), padding="VALID", conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.fc1 = nnx.Linear(16 * 5 * 5, 120, rngs=rngs)
        self.fc2 = nnx.Linear(120, 84, rngs=rngs)
        self.fc3 = nnx.Linear(84, num_classes, rngs=rngs)

    def __call__(self, x, taps: Taps):
        h = taps("conv1", jax.nn.relu(self.conv1(x)))
        h = taps("pool1", max_pool(h))
        h = taps("conv2", jax.nn.relu(self.conv2(h)))
        h = taps("pool2", max_pool(h))
        h = h.reshape(h.shape[0], -1)
        h = taps("fc1", jax.nn.relu(self.fc1(h)))
        h = taps("fc2", jax.nn.relu(self.fc2(h)))
        return taps("logits", self.fc3(h))


class InstanceNorm(nnx.Module):
    """Instance normalisation (Ulyanov et al. 2016) with a learned per-channel affine map."""

    def __init__(self, channels: int, eps: float = 1e-5):
        self.scale = nnx.Param(jnp.ones((channels,)))
        self.bias = nnx.Param(jnp.zeros((channels,)))
        self.eps = eps

    def __call__(self, x):
        mean = x.mean(axis=(1, 2), keepdims=True)
        var = x.var(axis=(1, 2), keepdims=True)
        scale, bias = (v[...].reshape(1, 1, 1, -1) for v in (self.scale, self.bias))
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class ConvNet(nnx.Module):
    """The 3-block ConvNet of the dataset-condensation papers (width 128, instance norm, ReLU, avg pool)."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, *, width: int = 128, depth: int = 3, rngs: nnx.Rngs):
        convs, norms = [], []
        c, size = in_channels, image_size
        for _ in range(depth):
            convs.append(nnx.Conv(c, width, (3, 3), padding="SAME", conv_general_dilated=conv_general_dilated, rngs=rngs))
            norms.append(InstanceNorm(width))
            c, size = width, size // 2
        self.convs = nnx.List(convs)
        self.norms = nnx.List(norms)
        self.fc = nnx.Linear(width * size * size, num_classes, rngs=rngs)

    def __call__(self, x, taps: Taps):
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms), start=1):
            h = taps(f"block{i}", avg_pool(jax.nn.relu(norm(conv(h)))))
        return taps("logits", self.fc(h.reshape(h.shape[0], -1)))


_SIZES = {(28, 1), (32, 3), (28, 3), (32, 1)}


def _small_model(cls, name, input_shape, num_classes, class_names, key, **kwargs) -> Model:
    h, w, c = input_shape
    if h != w or (h, c) not in _SIZES:
        raise ShapeError(f"{name} is built for 28x28 or 32x32 inputs with 1 or 3 channels; got input_shape {input_shape}.")
    if class_names is not None:
        class_names = tuple(class_names)
        num_classes = len(class_names)

    def build(k):
        return cls(c, num_classes, h, rngs=nnx.Rngs(k), **kwargs)

    key = jax.random.key(0) if key is None else key
    model = model_from_module(nnx.eval_shape(lambda: build(key)), name=name, input_shape=(h, w, c), class_names=class_names, build=build)
    return model.replace(params=jax.jit(model.init)(key))  # one compiled init instead of op-by-op


def lenet(input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10, *, class_names=None, key=None) -> Model:
    """LeNet-5 (Wang et al. 2018 variant) as a :class:`Model` with fresh weights from ``key``."""
    return _small_model(LeNet, "lenet", tuple(input_shape), num_classes, class_names, key)


def convnet(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10, *, class_names=None, key=None, width: int = 128) -> Model:
    """The 3-block ConvNet (Zhao et al. 2021) as a :class:`Model` with fresh weights from ``key``."""
    return _small_model(ConvNet, "convnet", tuple(input_shape), num_classes, class_names, key, width=width)
