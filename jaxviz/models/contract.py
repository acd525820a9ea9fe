"""The one model contract of jaxviz.

Every method in the library talks to a network through :class:`Model`, a pytree holding the
trainable parameters, any other state, and a pure ``forward(params, x, deltas) -> (out, acts)``:

* ``model(x) -> logits`` for input-gradient methods (saliency, IG, feature visualisation);
* ``model.probe(x, deltas, until=name) -> (logits, acts)`` where ``acts[name]`` is layer ``name``'s
  activation plus ``deltas[name]``; the gradient with respect to a layer is the gradient with respect
  to its delta at zero (Grad-CAM, FullGrad, layer objectives, Gram matrices). ``until`` stops the pass
  after that layer (``logits`` is then ``None``), so a loss on ``conv4_2`` does not pay for ``conv5``;
  :meth:`Model.activations` does this for the deepest layer it is asked for;
* ``model.apply(params, x) -> logits`` with ``params`` an explicit pytree of the *trainable*
  parameters only, so training steps can be unrolled and initialisations sampled with
  ``jax.vmap(model.init)(keys)`` (dataset distillation);
* ``model.apply_train(params, x, state=..., key=...) -> (logits, new_state)`` runs in training mode
  (batch statistics, dropout with an explicit key) and returns the updated non-trainable state.

**Heads.** A classifier (``head=True``) returns class logits and has ``num_classes``. A feature
extractor without a classifier (``head=False``, e.g. :func:`~jaxviz.models.load_hed_vgg16`) returns its
last layer from ``model(x)``, has ``num_classes is None``, and methods that need class logits raise
:class:`~jaxviz.errors.HeadlessModelError`; use ``model.activations(x, layers)`` for its features.

**State.** ``params`` holds only trainable parameters (``nnx.Param``; Linen's ``"params"``), the
leaves ``jax.grad`` differentiates and optimisers update. Batch-norm statistics and RNG counters live in
``state`` (``None`` for models without any); a forward of a stateful model is called with
``state=`` as a keyword, and ``forward_train(params, state, x, key) -> (out, new_state)`` gives the
training mode.

Inputs are pixels: NHWC in [0, 1] (RGB or grey), floating point of any precision (float32, float64
under ``jax_enable_x64``, bfloat16 are kept), or ``uint8``/``uint16`` images, which are scaled to
[0, 1]. Each model applies its own preprocessing inside ``forward`` and carries
``preprocess``/``deprocess`` for users who want network space.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import HeadlessModelError, ShapeError, TargetError, UnknownLayerError

Params = Any
Forward = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def identity(x):
    """The identity; the default pre- and deprocessing of a model."""
    return x


class StopForward(Exception):
    """Raised by :class:`Taps` after the layer a probe asked to stop at; carries the activations."""

    def __init__(self, acts: dict[str, jax.Array]):
        super().__init__("forward pass stopped early")
        self.acts = acts


class Deltas(dict):
    """The deltas of one probe call, plus ``until``: the layer after which the pass may stop."""

    def __init__(self, deltas: Mapping[str, jax.Array] | None = None, until: str | None = None):
        super().__init__(deltas or {})
        self.until = until


class Taps:
    """Records named activations during a forward pass and adds the caller's deltas to them.

    Zoo modules call ``h = taps(name, h)`` at each named layer; ``taps.acts`` then holds the
    (perturbed) activations in the order they were computed. When ``deltas`` is a :class:`Deltas`
    with ``until`` set, the pass ends with :class:`StopForward` right after that layer.
    """

    def __init__(self, deltas: Mapping[str, jax.Array] | None = None):
        self.deltas = dict(deltas or {})
        self.until = getattr(deltas, "until", None)
        self.acts: dict[str, jax.Array] = {}

    def __call__(self, name: str, h: jax.Array) -> jax.Array:
        if name in self.deltas:
            h = h + self.deltas[name]
        self.acts[name] = h
        if name == self.until:
            raise StopForward(self.acts)
        return h


def run_forward(forward: Forward, params: Params, x: jax.Array, deltas: Mapping[str, Any], state: Any = None):
    """``forward(params, x, deltas[, state=state])`` -> ``(out, acts)``; ``out`` is ``None`` if it stopped early."""
    try:
        return forward(params, x, deltas) if state is None else forward(params, x, deltas, state=state)
    except StopForward as stop:
        return None, stop.acts


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


def layer_order(forward: Forward, params: Params, input_shape: Sequence[int], state: Any = None) -> tuple[str, ...]:
    """Names of the activations ``forward`` exposes, in the order it computes them (traced, not run)."""
    names: list[str] = []

    def record(p, s, x):
        acts = run_forward(forward, p, x, {}, s)[1]
        names.extend(acts)
        return acts

    jax.eval_shape(record, params, state, jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
    return tuple(names)


def check_targets(targets: ArrayLike, batch: int, num_classes: int | None, name: str = "model") -> jax.Array:
    """Broadcast an int or ``(B,)`` integer targets to ``(B,)`` int32, checking dtype, length and range.

    The range is checked when the targets are concrete and ``num_classes`` is known.
    """
    traced = isinstance(targets, jax.core.Tracer)
    t = targets if traced else np.asarray(targets)
    if not (jnp.issubdtype(t.dtype, jnp.integer) or t.dtype == bool and t.size == 0):
        raise TargetError(f"targets must be integer class indices; got {t.dtype} ({targets!r:.60}). "
                          "Cast them with np.asarray(t).astype(int).")
    if t.ndim == 0:
        t = jnp.full((batch,), t, jnp.int32) if traced else np.full((batch,), t)
    if t.ndim != 1 or t.shape[0] != batch:
        raise TargetError(f"targets must be an int or shape ({batch},) for a batch of {batch}; got shape {t.shape}.")
    if num_classes is not None and not traced:
        bad = t[(t < 0) | (t >= num_classes)]
        if bad.size:
            raise TargetError(f"class index {int(bad[0])} out of range for {name} with {num_classes} classes (0..{num_classes - 1}).")
    return jnp.asarray(t, jnp.int32)


def as_pixels(x: ArrayLike, name: str = "model") -> jax.Array:
    """A pixel batch as a floating ``jax.Array``: floating dtypes kept, ``uint8``/``uint16`` scaled to [0, 1]."""
    dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(x)
    if dtype == np.uint8 or dtype == np.uint16:
        return jnp.asarray(x, jnp.float32) / float(np.iinfo(dtype).max)
    if dtype == bool:
        return jnp.asarray(x, jnp.float32)
    if jnp.issubdtype(dtype, jnp.integer):
        raise ShapeError(f"{name} got integer pixels of dtype {dtype}, whose range is ambiguous; pass uint8 "
                         "(0..255), uint16 (0..65535) or floats in [0, 1].")
    raise ShapeError(f"{name} expects real-valued pixels; got dtype {dtype}.")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity, so jax.jit(model) works
class Model:
    """A network as a pytree: explicit ``params`` and ``state`` plus static, pure functions.

    Attributes:
      params: the trainable parameters (pytree leaves; ``jit``/``vmap``/``grad`` see through them).
      forward: ``forward(params, x, deltas) -> (out, acts)`` on pixel inputs ``x`` in evaluation mode;
        called with ``state=`` as well when the model has state.
      layers: names of the layers ``forward`` exposes in ``acts``, input to output.
      input_shape: ``(H, W, C)`` the model expects (``H``/``W`` may differ if ``resizable``).
      class_names: one name per output class, or ``None``.
      name: a short name used in reports and checkpoints.
      preprocess: pixels in [0, 1] -> network input (applied inside ``forward``).
      deprocess: network input -> pixels in [0, 1].
      init: ``init(key) -> params`` for fresh trainable weights (``None`` when unknown).
      resizable: whether any spatial size is accepted (fully convolutional nets).
      head: whether ``forward`` ends in class logits (``False``: a headless feature extractor).
      state: non-trainable variables (batch statistics, RNG counters), or ``None``.
      forward_train: ``forward_train(params, state, x, key) -> (out, new_state)`` in training mode, or
        ``None`` when training mode is the evaluation forward (no batch norm, no dropout).
    """

    params: Params
    forward: Forward = dataclasses.field(metadata=dict(static=True))
    layers: tuple[str, ...] = dataclasses.field(default=(), metadata=dict(static=True))
    input_shape: tuple[int, int, int] | None = dataclasses.field(default=None, metadata=dict(static=True))
    class_names: tuple[str, ...] | None = dataclasses.field(default=None, metadata=dict(static=True))
    name: str = dataclasses.field(default="model", metadata=dict(static=True))
    preprocess: Callable[[jax.Array], jax.Array] = dataclasses.field(default=identity, metadata=dict(static=True))
    deprocess: Callable[[jax.Array], jax.Array] = dataclasses.field(default=identity, metadata=dict(static=True))
    init: Callable[[jax.Array], Params] | None = dataclasses.field(default=None, metadata=dict(static=True))
    resizable: bool = dataclasses.field(default=False, metadata=dict(static=True))
    head: bool = dataclasses.field(default=True, metadata=dict(static=True))
    state: Any = None
    forward_train: Callable | None = dataclasses.field(default=None, metadata=dict(static=True))

    # -- the contract -------------------------------------------------------------------------
    def __call__(self, x: ArrayLike) -> jax.Array:
        """Logits ``(B, classes)`` for pixel inputs ``x`` of shape ``(B, H, W, C)`` (features if headless)."""
        return self.apply(self.params, x)

    def apply(self, params: Params, x: ArrayLike, *, state: Any = None) -> jax.Array:
        """Logits with explicit ``params`` (for unrolled training and ``vmap`` over inits), evaluation mode."""
        state = self.state if state is None else state
        return run_forward(self.forward, params, self.check_input(x), {}, state)[0]

    def apply_train(self, params: Params, x: ArrayLike, *, state: Any = None, key: jax.Array | None = None) -> tuple[jax.Array, Any]:
        """``(logits, new_state)`` in training mode: batch statistics, dropout drawn from ``key``."""
        state = self.state if state is None else state
        x = self.check_input(x)
        if self.forward_train is None:
            return self.apply(params, x, state=state), state
        return self.forward_train(params, state, x, key)

    def probe(self, x: ArrayLike, deltas: Mapping[str, ArrayLike] | None = None, *, until: str | None = None,
              params: Params = None) -> tuple[jax.Array | None, dict[str, jax.Array]]:
        """``(logits, acts)``; ``acts[name]`` is layer ``name`` plus ``deltas[name]``.

        With ``until`` the pass stops after that layer and ``logits`` is ``None``. ``params``
        (default: the model's own) lets layer objectives be differentiated with respect to weights.
        """
        deltas = dict(deltas or {})
        self.check_layers(list(deltas) + ([until] if until is not None else []))
        params = self.params if params is None else params
        return run_forward(self.forward, params, self.check_input(x), Deltas(deltas, until), self.state)

    def activations(self, x: ArrayLike, layers: Sequence[str] | None = None) -> dict[str, jax.Array]:
        """Activations of ``layers`` (all by default) for a batch, in one pass that stops after the deepest."""
        names = self.layers if layers is None else self.check_layers(layers)
        if not names:
            return {}
        deepest = max(names, key=self.layers.index)
        _, acts = self.probe(x, until=deepest)
        return {n: acts[n] for n in names}

    def layer_shapes(self, x: ArrayLike | None = None) -> dict[str, tuple[int, ...]]:
        """Shape of every layer's activation for ``x`` (default: one image of ``input_shape``)."""
        return {n: tuple(a.shape) for n, a in self._layer_structs(x).items()}

    def zero_deltas(self, x: ArrayLike, layers: Sequence[str]) -> dict[str, jax.Array]:
        """Zero deltas for ``layers`` matching batch ``x``: the point where layer gradients are taken."""
        layers = self.check_layers(layers)
        x = self.check_input(x)
        structs = self._layer_structs(x)
        return {n: batch_full(x, structs[n].shape, dtype=structs[n].dtype) for n in layers}

    def _layer_structs(self, x: ArrayLike | None) -> dict[str, jax.ShapeDtypeStruct]:
        if x is None:
            if self.input_shape is None:
                raise ShapeError(f"{self.name}: no input_shape known; pass an example batch x.")
            x = jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32)
        _, acts = jax.eval_shape(self.probe, x)
        return {n: acts[n] for n in self.layers}

    @property
    def num_classes(self) -> int | None:
        """Number of classes of a classifier; ``None`` for a headless model or an unknown input shape."""
        if not self.head:
            return None
        if self.class_names is not None:
            return len(self.class_names)
        if self.input_shape is None:
            return None
        out = jax.eval_shape(self, jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32))
        return int(out.shape[-1])

    def replace(self, **changes) -> Model:
        return dataclasses.replace(self, **changes)

    # -- validation ---------------------------------------------------------------------------
    def require_head(self, what: str) -> None:
        """Raise :class:`HeadlessModelError` if this model has no classifier head."""
        if not self.head:
            raise HeadlessModelError(
                f"{what} needs class logits, but {self.name} is a feature extractor without a classifier head; "
                f"use {self.name}.activations(x, layers) for its features (layers: {', '.join(self.layers[-3:])}, ...), "
                "or a model with a head."
            )

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
        """Validate a pixel batch and return it as a floating ``jax.Array`` (see :func:`as_pixels`)."""
        shape = np.shape(x)
        if len(shape) != 4:
            hint = " Add a batch axis with x[None]." if len(shape) == 3 else ""
            raise ShapeError(f"{self.name} expects a batch (B, H, W, C); got an array of shape {shape}.{hint}")
        x = as_pixels(x, self.name)
        if self.input_shape is not None:
            h, w, c = self.input_shape
            if shape[-1] != c:
                fix = "convert grey to RGB with jaxviz.data.to_rgb" if c == 3 else "convert to grey with jaxviz.data.to_grey"
                raise ShapeError(f"{self.name} expects {c} channel(s); got {shape[-1]} (shape {shape}); {fix}.")
            if not self.resizable and tuple(shape[1:3]) != (h, w):
                raise ShapeError(
                    f"{self.name} expects {h}x{w} images; got {shape[1]}x{shape[2]}; resize with jaxviz.data.resize."
                )
        return x

    def check_targets(self, targets: ArrayLike, batch: int) -> jax.Array:
        """Broadcast an int or ``(B,)`` targets to ``(B,)`` int32, checking dtype, range and length."""
        self.require_head("a class target")
        return check_targets(targets, batch, self.num_classes, self.name)
