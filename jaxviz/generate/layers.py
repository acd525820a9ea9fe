"""Building blocks of the feed-forward generators: reflect-padded convolutions, normalisation and
the three ways to double the resolution that Odena, Dumoulin & Olah compare in "Deconvolution and
Checkerboard Artifacts" (distill.pub 2016).

* ``"transposed3"``: a 3x3 transposed convolution with stride 2 (uneven overlap: checkerboards);
* ``"transposed4"``: a 4x4 transposed convolution with stride 2 (even overlap, still prone to them);
* ``"resize"``: nearest-neighbour upsampling by 2 followed by a 3x3 convolution (resize-convolution,
  the article's remedy).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxviz.attribution._common import check_choice
from jaxviz.models.ops import conv_general_dilated
from jaxviz.models.zoo import InstanceNorm

UPSAMPLINGS = ("transposed3", "transposed4", "resize")
NORMS = ("instance", "batch", "none")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12))
def _valid_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                feature_group_count=1, batch_group_count=1, precision=None, preferred_element_type=None,
                out_sharding=None, lowering="auto"):
    """A VALID convolution computed as a zero-padded one, cropped: the same numbers, but XLA's CPU
    convolution runs the padded form up to 25x faster for single large images (9x9, 32 -> 3 channels
    at 256 px: 198 -> 7 ms), while the derivative of the plain form is the faster one; so forward the
    first, backward the second. Output layers (<= 4 channels) with fewer than 32 input channels get
    zero channels up to 32, which the same kernel runs 1.4-2.4x faster (9x9, 16 -> 3 at 256 px)."""
    s = tuple(window_strides)
    cin, cout = rhs.shape[2:]
    if cout <= 4 and cin < 32 and feature_group_count == 1:  # an output layer: XLA's CPU kernel is 2x faster at 32 channels
        lhs = jnp.pad(lhs, ((0, 0), (0, 0), (0, 0), (0, 32 - cin)))
        rhs = jnp.pad(rhs, ((0, 0), (0, 0), (0, 32 - cin), (0, 0)))
    out = conv_general_dilated(lhs, rhs, s, [(si, si) for si in s], lhs_dilation, rhs_dilation, dimension_numbers,
                               feature_group_count, batch_group_count, precision, preferred_element_type, out_sharding)
    (h, w), (kh, kw) = lhs.shape[1:3], rhs.shape[:2]
    return out[:, 1:1 + (h - kh) // s[0] + 1, 1:1 + (w - kw) // s[1] + 1]


def _valid_conv_fwd(lhs, rhs, *static):
    return _valid_conv(lhs, rhs, *static), (lhs, rhs)


def _valid_conv_bwd(*args):
    *static, (lhs, rhs), g = args
    _, vjp = jax.vjp(lambda a, b: conv_general_dilated(a, b, *static[:-1]), lhs, rhs)
    return vjp(g)


_valid_conv.defvjp(_valid_conv_fwd, _valid_conv_bwd)


def _conv_for(padding_is_valid: bool):
    return _valid_conv if padding_is_valid and jax.default_backend() == "cpu" else conv_general_dilated


class ConvLayer(nnx.Module):
    """A ``k x k`` convolution with reflect padding of ``k // 2`` (Johnson et al. 2016's padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, *, rngs: nnx.Rngs):
        self.pad = kernel // 2
        self.conv = nnx.Conv(in_channels, out_channels, (kernel, kernel), strides=stride, padding="VALID",
                             conv_general_dilated=_conv_for(True), rngs=rngs)

    def __call__(self, x):
        p = self.pad
        return self.conv(jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect") if p else x)


def norm_layer(kind: str, channels: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Instance norm (Ulyanov et al. 2016), batch norm, or identity, with a learned affine map."""
    check_choice("normalisation", kind, NORMS)
    if kind == "instance":
        return InstanceNorm(channels)
    if kind == "batch":
        return nnx.BatchNorm(channels, momentum=0.9, rngs=rngs)
    return Identity()


class Identity(nnx.Module):
    def __call__(self, x):
        return x


class Upsample(nnx.Module):
    """Doubles height and width: a stride-2 transposed convolution (kernel 3 or 4) or resize-convolution."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = "resize", *, rngs: nnx.Rngs):
        self.mode = check_choice("upsampling", mode, UPSAMPLINGS)
        if mode == "resize":
            self.conv = ConvLayer(in_channels, out_channels, 3, rngs=rngs)
        else:
            k = 3 if mode == "transposed3" else 4
            self.conv = nnx.ConvTranspose(in_channels, out_channels, (k, k), strides=(2, 2), padding="SAME", rngs=rngs)

    def __call__(self, x):
        if self.mode == "resize":
            b, h, w, c = x.shape
            x = jax.image.resize(x, (b, 2 * h, 2 * w, c), method="nearest")
        return self.conv(x)


def build_on_host(build, key: jax.Array) -> nnx.Module:
    """``build(rngs)``'s module with weights drawn by numpy on the host: no initialiser compiled per shape.

    Kernels (rank >= 2) get He et al.'s normal (variance ``2 / fan_in``, for ReLU networks); scales
    and variances 1; biases, means and everything else 0. Seeded by ``key``, so deterministic.
    """
    abstract = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    rng = np.random.default_rng(np.asarray(data).ravel().tolist())

    def draw(path, leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        name = next(k.key for k in reversed(path) if isinstance(k, jax.tree_util.DictKey))
        if len(leaf.shape) >= 2:
            return jnp.asarray(rng.standard_normal(leaf.shape) * np.sqrt(2.0 / max(1, int(np.prod(leaf.shape[:-1])))), leaf.dtype)
        return jnp.full(leaf.shape, 1 if name in ("scale", "var") else 0, leaf.dtype)

    return nnx.merge(graphdef, jax.tree.map_with_path(draw, state))
