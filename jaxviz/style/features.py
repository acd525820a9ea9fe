"""Feature extractors for style: any :class:`~jaxviz.models.Model`, layers chosen by name.

The one place where style methods read a network is :func:`features`, a call of
``model.activations(x, layers)``. Two options Gatys et al. (2015) use are provided on top of any model:

* average pooling instead of max pooling (``pooling="avg"``), by rewriting the traced forward pass:
  every max-pooling window (``reduce_window_max``) becomes the mean of the same window, padding
  excluded, so the zoo's layer definitions serve unchanged;
* the random-weights baseline is :func:`jaxviz.models.random_weights`: the same architecture with random filters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.jaxpr import Interpreter, any_eqn
from jaxviz.models.contract import Model

POOLINGS = ("max", "avg")

_VGG_TEXTURE = ("block1_conv1", "block1_pool", "block2_pool", "block3_pool", "block4_pool")  # Gatys 2015
_VGG_STYLE = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")  # Gatys 2016
_SQUEEZENET = ("conv1", "pool1", "pool3", "pool5", "fire8")  # the same depths: /2, /4, /8, /16 (two)
TEXTURE_LAYERS = {"squeezenet": _SQUEEZENET, "vgg16_hed": _VGG_TEXTURE, "vgg16": _VGG_TEXTURE, "vgg19": _VGG_TEXTURE}
STYLE_LAYERS = {"squeezenet": ("conv1", "fire2", "fire3", "fire5", "fire7"), "vgg16_hed": _VGG_STYLE,
                "vgg16": _VGG_STYLE, "vgg19": _VGG_STYLE}
DOODLE_LAYERS = {"squeezenet": ("conv1", "pool1", "fire3", "pool3"),  # shallow: segment masks stay sharp
                 "vgg16_hed": _VGG_STYLE[:4], "vgg16": _VGG_STYLE[:4], "vgg19": _VGG_STYLE[:4]}
CONTENT_LAYER = {"squeezenet": "fire5", "vgg16_hed": "block4_conv2", "vgg16": "block4_conv2", "vgg19": "block4_conv2"}


def _family(model: Model) -> str:
    name = model.name
    for prefix in ("vgg16_hed", "vgg16", "vgg19", "squeezenet"):
        if name.startswith(prefix):
            return prefix
    return name


def _default(table: dict, model: Model, what: str, arg: str):
    family = _family(model)
    if family not in table:
        raise JaxvizError(f"no default {what} for model {model.name!r}; pass {arg}= with names from: {', '.join(model.layers)}.")
    return table[family]


def texture_layers(model: Model) -> tuple[str, ...]:
    """Gatys et al. (2015) texture layers: conv1_1 and pools 1-4 for VGG; their depths in SqueezeNet."""
    return _default(TEXTURE_LAYERS, model, "texture layers", "layers")


def style_layers(model: Model) -> tuple[str, ...]:
    """Gatys et al. (2016) style layers: conv1_1 ... conv5_1 for VGG; five matching SqueezeNet layers."""
    return _default(STYLE_LAYERS, model, "style layers", "style_layers")


def doodle_layers(model: Model) -> tuple[str, ...]:
    """Layers for neural doodles: shallower than the texture set, where the segment masks are still sharp."""
    return _default(DOODLE_LAYERS, model, "doodle layers", "layers")


def content_layer(model: Model) -> str:
    """Gatys et al. (2016) content layer: conv4_2 for VGG, ``fire5`` (stride 8) for SqueezeNet."""
    return _default(CONTENT_LAYER, model, "content layer", "content_layer")


class _AveragePooling(Interpreter):
    """Replaces each ``reduce_window_max`` by the mean over the same windows (padding not counted)."""

    def wants(self, jaxpr) -> bool:
        return any_eqn(jaxpr, lambda e: e.primitive.name == "reduce_window_max")

    def rule(self, eqn, vals, tags):
        if eqn.primitive.name != "reduce_window_max":
            return None
        (x,), p = vals, eqn.params
        args = (p["window_dimensions"], p["window_strides"], p["padding"], p["base_dilation"], p["window_dilation"])
        total = jax.lax.reduce_window(x, np.zeros((), x.dtype), jax.lax.add, *args)
        return [total / _window_counts(x.shape, x.dtype, args)]


def _window_counts(shape, dtype, args) -> np.ndarray:
    """How many in-bounds elements each pooling window holds (a constant, computed once on the host)."""
    with jax.ensure_compile_time_eval():
        ones = np.ones([1 if d == 1 else s for s, d in zip(shape, args[0])], dtype)
        counts = jax.lax.reduce_window(ones, np.zeros((), dtype), jax.lax.add, *args)
    return np.asarray(counts)


def average_pooling(fn: Callable) -> Callable:
    """``fn`` with every max pooling replaced by average pooling of the same windows.

    Gatys et al. (2015) found average pooling gives slightly better textures and gradient flow. Works
    on any JAX function of arrays (the traced program is rewritten; no model change needed).
    """

    def pooled(*args):
        flat, tree = jax.tree.flatten(args)
        closed, shape = jax.make_jaxpr(lambda *a: fn(*jax.tree.unflatten(tree, a)), return_shape=True)(*flat)
        outs, _ = _AveragePooling().run(closed.jaxpr, closed.consts, flat, [None] * len(flat))
        return jax.tree.unflatten(jax.tree.structure(shape), outs)

    return pooled


def check_layers(model: Model, layers: Sequence[str] | None, what: str = "layers") -> tuple[str, ...]:
    """Layer names as a tuple: not empty, each known to ``model`` (else a message listing valid ones)."""
    if layers is None or isinstance(layers, str) or len(tuple(layers)) == 0:
        got = "an empty list" if layers is not None and not isinstance(layers, str) else repr(layers)
        raise JaxvizError(f"{what} must be a non-empty list of layer names; got {got}. Valid layers: {', '.join(model.layers)}.")
    return model.check_layers(tuple(layers))


def features(model: Model, x: jax.Array, layers: Sequence[str], pooling: str = "max") -> dict[str, jax.Array]:
    """Activations ``{layer: (B, h, w, c)}`` of ``model`` for pixels ``x``; the only read of a model in style."""
    fn = lambda x: model.activations(x, layers)
    return (average_pooling(fn) if pooling == "avg" else fn)(x)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Extractor:
    """A model and the layers read from it, callable on pixel batches: ``extractor(x) -> {layer: act}``.

    A pytree (the model's parameters are its leaves), so it can be passed to ``jax.jit`` functions;
    ``layers`` and ``pooling`` are static.
    """

    model: Model
    layers: tuple[str, ...] = dataclasses.field(metadata=dict(static=True))
    pooling: str = dataclasses.field(default="max", metadata=dict(static=True))

    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        return features(self.model, x, self.layers, self.pooling)


def extractor(model: Model, layers: Sequence[str], *, pooling: str = "max") -> Extractor:
    """An :class:`Extractor` for ``layers`` of ``model``; ``pooling="avg"`` swaps max for average pooling."""
    if not isinstance(model, Model):
        raise JaxvizError(f"expected a jaxviz Model; got {type(model).__name__}. Wrap your network with jaxviz.models.from_nnx / from_linen / from_functions.")
    if pooling not in POOLINGS:
        raise JaxvizError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}.")
    return Extractor(model, check_layers(model, layers), pooling)


def check_image_size(ext: Extractor, shape: Sequence[int], what: str = "image") -> dict[str, tuple[int, ...]]:
    """Layer shapes for an input of ``shape``; :class:`ShapeError` if the image is too small for a layer."""
    shape = tuple(int(s) for s in shape)
    jax.eval_shape(ext.model.check_input, jax.ShapeDtypeStruct(shape, jnp.float32))  # channels, fixed sizes
    shapes = _shapes(ext, shape)
    if shapes is None:
        smallest = next((s for s in range(max(shape[1:3]) + 1, 4097) if _shapes(ext, (1, s, s, shape[3])) is not None), None)
        hint = f" (use at least {smallest}x{smallest} px)" if smallest else ""
        raise ShapeError(f"the {what} ({shape[1]}x{shape[2]}) is too small for layer(s) {', '.join(ext.layers)} of "
                         f"{ext.model.name}{hint}; resize it or choose shallower layers.")
    return shapes


def _shapes(ext: Extractor, shape) -> dict | None:
    try:
        acts = jax.eval_shape(ext, jax.ShapeDtypeStruct(shape, jnp.float32))
    except (TypeError, ValueError, ZeroDivisionError):  # negative or zero sizes inside the forward pass
        return None
    shapes = {n: tuple(a.shape) for n, a in acts.items()}
    return shapes if all(d > 0 for s in shapes.values() for d in s) else None
