"""The one model contract of jaxviz.

Every method in the library talks to a network through :class:`Model`, a pytree holding the
parameters and a pure ``forward(params, x, deltas) -> (logits, acts)`` function:

* ``model(x) -> logits`` for input-gradient methods (saliency, IG, feature visualisation);
* ``model.probe(x, deltas) -> (logits, acts)`` where ``acts[name]`` is layer ``name``'s activation
  plus ``deltas[name]``; the gradient with respect to a layer is the gradient with respect to its
  delta at zero (Grad-CAM, FullGrad, layer objectives, Gram matrices);
* ``model.apply(params, x) -> logits`` with ``params`` an explicit pytree, so training steps can be
  unrolled and initialisations sampled with ``jax.vmap(model.init)(keys)`` (dataset distillation).

Inputs are pixels: NHWC float32 in [0, 1] (RGB or grey); each model applies its own preprocessing
inside ``forward`` and carries ``preprocess``/``deprocess`` for users who want network space.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import ShapeError, TargetError, UnknownLayerError

Params = Any
Forward = Callable[[Params, jax.Array, Mapping[str, jax.Array]], tuple[jax.Array, dict[str, jax.Array]]]


def _identity(x):
    return x


class Taps:
    """Records named activations during a forward pass and adds the caller's deltas to them.

    Zoo modules call ``h = taps(name, h)`` at each named layer; ``taps.acts`` then holds the
    (perturbed) activations in the order they were computed.
    """

    def __init__(self, deltas: Mapping[str, jax.Array] | None = None):
        self.deltas = dict(deltas or {})
        self.acts: dict[str, jax.Array] = {}

    def __call__(self, name: str, h: jax.Array) -> jax.Array:
        if name in self.deltas:
            h = h + self.deltas[name]
        self.acts[name] = h
        return h


def batch_full(x: jax.Array, shape: Sequence[int], fill: float = 0.0, dtype: Any = jnp.float32) -> jax.Array:
    """An array of ``shape`` filled with ``fill``, laid out like the batch ``x`` along its leading axis.

    Built from ``x`` (not ``jnp.full``) when both have the same batch size, so under a mesh it is sharded
    on the batch axis like ``x`` and a gradient taken with respect to it stays on each example's device.
    """
    shape = tuple(shape)
    if not shape or shape[0] != x.shape[0]:
        return jnp.full(shape, fill, dtype)
    per_example = jnp.zeros_like(x[:, 0, 0, 0], dtype=dtype) + jnp.asarray(fill, dtype)
    return jnp.broadcast_to(per_example.reshape(-1, *([1] * (len(shape) - 1))), shape)


def layer_order(forward: Forward, params: Params, input_shape: Sequence[int]) -> tuple[str, ...]:
    """Names of the activations ``forward`` exposes, in the order it computes them (traced, not run)."""
    names: list[str] = []

    def record(p, x):
        acts = forward(p, x, {})[1]
        names.extend(acts)
        return acts

    jax.eval_shape(record, params, jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
    return tuple(names)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity, so jax.jit(model) works
class Model:
    """A network as a pytree: explicit ``params`` plus static, pure functions.

    Attributes:
      params: the parameter pytree (the only pytree leaf data; ``jit``/``vmap`` see through it).
      forward: ``forward(params, x, deltas) -> (logits, acts)`` on pixel inputs ``x``.
      layers: names of the layers ``forward`` exposes in ``acts``, input to output.
      input_shape: ``(H, W, C)`` the model expects (``H``/``W`` may differ if ``resizable``).
      class_names: one name per output class, or ``None``.
      name: a short name used in reports and checkpoints.
      preprocess: pixels in [0, 1] -> network input (applied inside ``forward``).
      deprocess: network input -> pixels in [0, 1].
      init: ``init(key) -> params`` for fresh weights (``None`` for frozen pretrained nets).
      resizable: whether any spatial size is accepted (fully convolutional nets).
    """

    params: Params
    forward: Forward = dataclasses.field(metadata=dict(static=True))
    layers: tuple[str, ...] = dataclasses.field(default=(), metadata=dict(static=True))
    input_shape: tuple[int, int, int] | None = dataclasses.field(default=None, metadata=dict(static=True))
    class_names: tuple[str, ...] | None = dataclasses.field(default=None, metadata=dict(static=True))
    name: str = dataclasses.field(default="model", metadata=dict(static=True))
    preprocess: Callable[[jax.Array], jax.Array] = dataclasses.field(default=_identity, metadata=dict(static=True))
    deprocess: Callable[[jax.Array], jax.Array] = dataclasses.field(default=_identity, metadata=dict(static=True))
    init: Callable[[jax.Array], Params] | None = dataclasses.field(default=None, metadata=dict(static=True))
    resizable: bool = dataclasses.field(default=False, metadata=dict(static=True))

    # -- the contract -------------------------------------------------------------------------
    def __call__(self, x: ArrayLike) -> jax.Array:
        """Logits ``(B, classes)`` for pixel inputs ``x`` of shape ``(B, H, W, C)``."""
        return self.apply(self.params, x)

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Logits with explicit ``params`` (for unrolled training and ``vmap`` over inits)."""
        return self.forward(params, self.check_input(x), {})[0]

    def probe(self, x: ArrayLike, deltas: Mapping[str, ArrayLike] | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``(logits, acts)``; ``acts[name]`` is layer ``name`` plus ``deltas[name]``."""
        deltas = dict(deltas or {})
        self.check_layers(deltas)
        return self.forward(self.params, self.check_input(x), deltas)

    def activations(self, x: ArrayLike, layers: Sequence[str] | None = None) -> dict[str, jax.Array]:
        """Activations of ``layers`` (all by default) for a batch, in one pass."""
        names = self.layers if layers is None else self.check_layers(layers)
        _, acts = self.probe(x)
        return {n: acts[n] for n in names}

    def layer_shapes(self, x: ArrayLike | None = None) -> dict[str, tuple[int, ...]]:
        """Shape of every layer's activation for ``x`` (default: one image of ``input_shape``)."""
        if x is None:
            if self.input_shape is None:
                raise ShapeError(f"{self.name}: no input_shape known; pass an example batch x.")
            x = jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32)
        _, acts = jax.eval_shape(self.probe, x)
        return {n: tuple(acts[n].shape) for n in self.layers}

    def zero_deltas(self, x: ArrayLike, layers: Sequence[str]) -> dict[str, jax.Array]:
        """Zero deltas for ``layers`` matching batch ``x``: the point where layer gradients are taken."""
        x = self.check_input(x)
        shapes = self.layer_shapes(x)
        return {n: batch_full(x, shapes[n]) for n in self.check_layers(layers)}

    @property
    def num_classes(self) -> int | None:
        if self.class_names is not None:
            return len(self.class_names)
        if self.input_shape is None:
            return None
        out = jax.eval_shape(self, jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32))
        return int(out.shape[-1])

    def replace(self, **changes) -> Model:
        return dataclasses.replace(self, **changes)

    # -- validation ---------------------------------------------------------------------------
    def check_layers(self, names: Sequence[str] | Mapping[str, Any]) -> tuple[str, ...]:
        """Return ``names`` as a tuple, or raise :class:`UnknownLayerError` listing the valid ones."""
        names = tuple(names)
        unknown = [n for n in names if n not in self.layers]
        if unknown:
            raise UnknownLayerError(
                f"{self.name} has no layer {', '.join(map(repr, unknown))}; valid layers: {', '.join(self.layers) or '(none)'}"
            )
        return names

    def check_input(self, x: ArrayLike) -> jax.Array:
        """Validate a pixel batch and return it as float32 ``jax.Array``."""
        shape = np.shape(x)
        if len(shape) != 4:
            hint = " Add a batch axis with x[None]." if len(shape) == 3 else ""
            raise ShapeError(f"{self.name} expects a batch (B, H, W, C); got an array of shape {shape}.{hint}")
        dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
        if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer) or dtype == bool):
            raise ShapeError(f"{self.name} expects real-valued pixels; got dtype {dtype}.")
        if self.input_shape is not None:
            h, w, c = self.input_shape
            if shape[-1] != c:
                fix = "convert grey to RGB with jaxviz.data.to_rgb" if c == 3 else "convert to grey with jaxviz.data.to_grey"
                raise ShapeError(f"{self.name} expects {c} channel(s); got {shape[-1]} (shape {shape}); {fix}.")
            if not self.resizable and tuple(shape[1:3]) != (h, w):
                raise ShapeError(
                    f"{self.name} expects {h}x{w} images; got {shape[1]}x{shape[2]}; resize with jaxviz.data.resize."
                )
        return jnp.asarray(x, jnp.float32)

    def check_targets(self, targets: ArrayLike, batch: int) -> jax.Array:
        """Broadcast an int or ``(B,)`` targets to ``(B,)`` int32, checking range and length."""
        t = np.asarray(targets) if not isinstance(targets, jax.core.Tracer) else targets
        if t.ndim == 0:
            t = jnp.full((batch,), t, jnp.int32) if isinstance(t, jax.core.Tracer) else np.full((batch,), t)
        if t.ndim != 1 or t.shape[0] != batch:
            raise TargetError(f"targets must be an int or shape ({batch},) for a batch of {batch}; got shape {t.shape}.")
        n = self.num_classes
        if n is not None and not isinstance(t, jax.core.Tracer):
            bad = t[(t < 0) | (t >= n)]
            if bad.size:
                raise TargetError(f"class index {int(bad[0])} out of range for {self.name} with {n} classes (0..{n - 1}).")
        return jnp.asarray(t, jnp.int32)
