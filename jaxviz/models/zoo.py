"""Small classifiers of the visualisation and dataset-distillation literature, in flax NNX.

* :class:`LeNet` -- LeNet-5 as used by Wang et al., "Dataset Distillation" (2018): two 5x5
  convolutions with max pooling, three fully connected layers.
* :class:`ConvNet` -- the 3-block ConvNet of Zhao et al., "Dataset Condensation with Gradient
  Matching" (2021) and its successors: [conv 3x3 (width 128), instance norm, ReLU, 2x2 average
  pooling] x 3, then a linear classifier.
* :class:`TextCNN` -- the sentence CNN of Kim, "Convolutional Neural Networks for Sentence
  Classification" (EMNLP 2014), as used for text dataset distillation by Sucholutsky & Schonlau,
  "Soft-Label Dataset Distillation and Text Dataset Distillation" (IJCNN 2021): convolutions of
  several widths over a sequence of word vectors, max-over-time pooling, a linear classifier.

LeNet and ConvNet accept 28x28x1 and 32x32x3 inputs, TextCNN ``(length, embedding_dim, 1)`` word-vector
matrices (:func:`jaxviz.data.load_rotten_tomatoes`); :func:`lenet`, :func:`convnet` and :func:`textcnn`
return them wrapped in the library's :class:`~jaxviz.models.contract.Model` contract with fresh weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxviz.errors import ShapeError
from jaxviz.models.contract import Model, Taps
from jaxviz.models.nnx_module import model_from_module
from jaxviz.models.ops import avg_pool, conv_blocks, conv_blocks_apply, conv_general_dilated, max_pool, unblock


def conv_relu_pool(conv: nnx.Conv, x: jax.Array, taps: Taps, conv_name: str, pool_name: str) -> jax.Array:
    """``max_pool(relu(conv(x)))`` (2x2 windows) of a unit-stride convolution, tapped at ``conv_name`` and ``pool_name``.

    Where :func:`~jaxviz.models.ops.conv_blocks_apply` says so (on CPU, LeNet's first layer) and no
    delta is added at ``conv_name``, the convolution comes out in 2x2 blocks
    (:func:`~jaxviz.models.ops.conv_blocks`) and ``relu(max over each block + bias)`` is the pooled
    activation: the ReLU and the max commute, so values and gradients are the same, except that an
    exact tie within a block splits its gradient pairwise rather than evenly. The activation tapped
    at ``conv_name`` is then the blocks put back in place.
    """
    kernel = conv.kernel[...]
    if conv_name in taps.deltas or not conv_blocks_apply(x, kernel, conv.padding):
        h = taps(conv_name, jax.nn.relu(conv(x)))
        return taps(pool_name, max_pool(h))
    z, bias = conv_blocks(x, kernel, conv.padding), conv.bias[...].reshape(1, 1, 1, -1)
    taps(conv_name, jax.nn.relu(unblock(z) + bias))
    # a max of maxes, not a reduction: its derivative is elementwise (the reduction's tie count was slower)
    pooled = jnp.maximum(jnp.maximum(z[:, :, :, 0], z[:, :, :, 1]), jnp.maximum(z[:, :, :, 2], z[:, :, :, 3]))
    return taps(pool_name, jax.nn.relu(pooled + bias))


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
        h = conv_relu_pool(self.conv1, x, taps, "conv1", "pool1")
        h = conv_relu_pool(self.conv2, h, taps, "conv2", "pool2")
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


class TextCNN(nnx.Module):
    """Kim (2014)'s sentence CNN: for each width ``w``, ``filters`` ReLU convolutions of ``w`` consecutive
    word vectors (each a linear map of the window's ``w * embedding_dim`` numbers, so a batch of
    initialisations is a batched matrix product rather than a grouped convolution), max over time,
    then one linear layer on the concatenated maxima. Kim's dropout and weight-norm constraint are left
    out: the network is one pure function in training and evaluation, as unrolled distillation wants.
    """

    def __init__(self, embedding_dim: int, num_classes: int, *, widths: Sequence[int] = (3, 4, 5), filters: int = 50, rngs: nnx.Rngs):
        self.widths = tuple(int(w) for w in widths)
        self.convs = nnx.List([nnx.Linear(w * embedding_dim, filters, rngs=rngs) for w in self.widths])
        self.fc = nnx.Linear(len(self.widths) * filters, num_classes, rngs=rngs)

    def __call__(self, x, taps: Taps):
        b, length, dim, _ = x.shape
        x = x.reshape(b, length, dim)
        pooled = []
        for w, conv in zip(self.widths, self.convs):
            windows = jnp.concatenate([x[:, i : length - w + 1 + i] for i in range(w)], axis=-1)  # (b, length - w + 1, w * dim)
            pooled.append(taps(f"conv{w}", jax.nn.relu(conv(windows))).max(axis=1))
        h = taps("pool", jnp.concatenate(pooled, axis=-1))
        return taps("logits", self.fc(h))


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


def textcnn(input_shape: Sequence[int] = (32, 50, 1), num_classes: int = 2, *, class_names=None, key=None,
            widths: Sequence[int] = (3, 4, 5), filters: int = 50) -> Model:
    """Kim (2014)'s sentence CNN (:class:`TextCNN`) as a :class:`Model` with fresh weights from ``key``.

    Args:
      input_shape: ``(length, embedding_dim, 1)``: one word vector per row, as
        :func:`jaxviz.data.load_rotten_tomatoes` gives them.
      num_classes: classes (ignored when ``class_names`` is given).
      class_names: one name per class.
      key: where the weights come from (default ``key(0)``).
      widths: convolution widths in tokens (Kim: 3, 4, 5).
      filters: convolutions per width (Kim: 100).

    Layers: ``conv{w}`` ``(B, length - w + 1, filters)`` after ReLU, ``pool`` ``(B, len(widths) * filters)``
    (max over time), ``logits``.
    """
    input_shape = tuple(int(s) for s in input_shape)
    widths = tuple(int(w) for w in widths)
    if len(input_shape) != 3 or input_shape[2] != 1 or not widths or min(widths) < 1 or input_shape[0] < max(widths) or filters < 1:
        raise ShapeError(f"textcnn takes input_shape (length, embedding_dim, 1) with length >= the widest convolution, widths >= 1 and "
                         f"filters >= 1; got input_shape {input_shape}, widths {widths}, filters {filters}.")
    if class_names is not None:
        class_names = tuple(class_names)
        num_classes = len(class_names)

    def build(k):
        return TextCNN(input_shape[1], num_classes, widths=widths, filters=filters, rngs=nnx.Rngs(k))

    key = jax.random.key(0) if key is None else key
    model = model_from_module(nnx.eval_shape(lambda: build(key)), name="textcnn", input_shape=input_shape, class_names=class_names,
                              build=build)
    return model.replace(params=jax.jit(model.init)(key))
