"""Modified backward passes on any JAX function: guided backpropagation and deconvnet.

:func:`replace_relu_grad` traces a function to a jaxpr and re-evaluates it with every ReLU swapped for
a ``jax.custom_vjp`` ReLU whose backward rule you choose. What counts as a ReLU: a ``max`` equation
(``lax.max_p``) on floats with one operand a known zero -- a literal ``0.0``, a zero constant, or a
``broadcast_in_dim``/``reshape``/``convert_element_type`` of one. That covers ``jax.nn.relu`` (a
``custom_jvp_call`` around ``jit(max(x, 0.0))``), ``flax.nnx.relu``, ``jnp.maximum(x, 0)`` in
either order and the inner max of ``relu6``. Not ReLUs: ``jnp.where(x > 0, x, 0)``, leaky/ELU/GELU,
``x * (x > 0)``, max pooling (``reduce_window_max`` keeps its argmax-switch gradient, as deconvnet
prescribes). Bodies of ``jit``/``pjit``, ``closed_call``, ``remat`` and ``custom_jvp``/``custom_vjp``
calls are inlined when they contain a ReLU (a user's custom rule around a ReLU is replaced);
ReLUs inside ``lax.scan``/``cond``/``while_loop`` bodies are left unchanged.

References:
  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (deconvnet).
  Springenberg et al., "Striving for Simplicity: The All Convolutional Net", 2015 (guided backprop).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxviz import jaxpr as J
from jaxviz.attribution import _common as C
from jaxviz.errors import JaxvizError, ShapeError

ReluRule = Callable[[jax.Array, jax.Array], jax.Array]

_ZERO_PRESERVING = ("broadcast_in_dim", "reshape", "convert_element_type", "squeeze", "expand_dims", "transpose", "copy", "copy_p")


def guided_rule(x: jax.Array, g: jax.Array) -> jax.Array:
    """Guided backprop: pass ``g`` where both the input and the gradient are positive."""
    return jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g))


def deconvnet_rule(x: jax.Array, g: jax.Array) -> jax.Array:
    """Deconvnet: rectify the gradient, ignore the forward input."""
    del x
    return jnp.where(g > 0, g, jnp.zeros_like(g))


def gradient_rule(x: jax.Array, g: jax.Array) -> jax.Array:
    """Plain ReLU gradient (for tests and composition)."""
    return jnp.where(x > 0, g, jnp.zeros_like(g))


def redirected_rule(x: jax.Array, g: jax.Array) -> jax.Array:
    """Lucid's redirected ReLU gradient (Olah et al., "Feature Visualization", 2017), for optimisation.

    Per example (leading axis): the plain ReLU gradient, unless it is zero everywhere -- every unit
    the objective reaches is dead, so plain gradient ascent could never move the input. Then the
    gradient passes through the dead units too, except where a descent step on the loss would push
    an already negative input further down (``x < 0`` and ``g > 0``).
    """
    plain = gradient_rule(x, g)
    if plain.ndim == 0:
        return plain
    redirected = jnp.where((x < 0) & (g > 0), jnp.zeros_like(g), g)
    alive = jnp.any(plain != 0, axis=tuple(range(1, plain.ndim)), keepdims=True)
    return jnp.where(alive, plain, redirected)


RULES = {"guided": guided_rule, "deconvnet": deconvnet_rule, "gradient": gradient_rule, "redirected": redirected_rule}


@functools.cache
def custom_relu(rule: ReluRule) -> Callable[[jax.Array], jax.Array]:
    """A ReLU whose backward pass is ``rule(x, g)``."""

    @jax.custom_vjp
    def relu(x):
        return jnp.maximum(x, jnp.zeros((), x.dtype))

    def fwd(x):
        return relu(x), x

    def bwd(x, g):
        return (rule(x, g),)

    relu.defvjp(fwd, bwd)
    return relu


def _is_float(v) -> bool:
    aval = getattr(v, "aval", None)
    return aval is not None and jnp.issubdtype(aval.dtype, jnp.floating)


def _relu_operand(eqn, tags) -> int | None:
    """Index of the non-zero operand if ``eqn`` is ``max(x, 0)`` / ``max(0, x)``, else ``None``."""
    if eqn.primitive.name != "max" or len(eqn.invars) != 2 or not _is_float(eqn.outvars[0]):
        return None
    if tags[1] and not tags[0]:
        return 0
    if tags[0] and not tags[1]:
        return 1
    return None


def _has_relu_syntax(eqn) -> bool:
    # Conservative syntactic check used to decide whether to inline a body.
    return eqn.primitive.name == "max"


class _ReluInterpreter(J.Interpreter):
    """Tags: ``True`` for values known to be all zeros."""

    def __init__(self, rule: ReluRule):
        self.relu = custom_relu(rule)
        self._wants: dict[int, bool] = {}

    def const_tag(self, value):
        return J.is_concrete_zero(value)

    def wants(self, jaxpr):
        k = id(jaxpr)
        if k not in self._wants:
            self._wants[k] = J.any_eqn(jaxpr, _has_relu_syntax)
        return self._wants[k]

    def rule(self, eqn, vals, tags):
        i = _relu_operand(eqn, tags)
        if i is None:
            return None
        out_aval = eqn.outvars[0].aval
        y = self.relu(jnp.asarray(vals[i], out_aval.dtype))
        return [jnp.broadcast_to(y, out_aval.shape)]

    def tags(self, eqn, vals, tags):
        if eqn.primitive.name in _ZERO_PRESERVING and tags and tags[0]:
            return [True] * len(eqn.outvars)
        return [False] * len(eqn.outvars)


def replace_relu_grad(fn: Callable[..., Any], rule: str | ReluRule = "guided") -> Callable[..., Any]:
    """``fn`` with the backward pass of each ReLU replaced by ``rule`` (forward values unchanged).

    Args:
      fn: any JAX function of arrays (or pytrees of arrays).
      rule: ``"guided"`` (Springenberg et al. 2015), ``"deconvnet"`` (Zeiler & Fergus 2014),
        ``"redirected"`` (Lucid's, for feature visualisation), ``"gradient"`` (unchanged) or a
        callable ``rule(x, g) -> grad_x`` for the ReLU input ``x``.

    Example:
      >>> g = jax.grad(lambda x: replace_relu_grad(net, "guided")(x)[0, 3])(x)
    """
    if isinstance(rule, str):
        C.check_choice("rule", rule, tuple(RULES))
        rule = RULES[rule]
    interp = _ReluInterpreter(rule)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        flat, tree = jax.tree.flatten((args, kwargs))

        def flat_fn(*leaves):
            a, k = jax.tree.unflatten(tree, leaves)
            return fn(*a, **k)

        closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*flat)
        outs, _ = interp.run(closed.jaxpr, closed.consts, flat, [J.is_concrete_zero(a) for a in flat])
        return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

    return wrapped


def _modified_gradient(rule, model_or_fn, x, target, reduce):
    f, x, t = C.prepare(model_or_fn, x, target)
    g = replace_relu_grad(lambda xx: f(xx), rule)
    return C.reduce_channels(C.target_grad(g, x, t), reduce)


@C.compiled
def guided_backprop(model_or_fn, x: ArrayLike, target: ArrayLike, *, reduce: str | None = None) -> jax.Array:
    """Guided backpropagation (Springenberg et al. 2015) of the target logit; ``(B, H, W, C)``.

    Works on any JAX function: ReLUs are found in its jaxpr (see the module docstring).
    """
    return _modified_gradient("guided", model_or_fn, x, target, reduce)


@C.compiled
def deconvnet(model_or_fn, x: ArrayLike, target: ArrayLike, *, reduce: str | None = None) -> jax.Array:
    """Deconvnet projection of the target logit (Zeiler & Fergus 2014); ``(B, H, W, C)``."""
    return _modified_gradient("deconvnet", model_or_fn, x, target, reduce)


@C.compiled
def unit_projection(model, x: ArrayLike, layer: str, unit: int | tuple[int, ...], *, method: str = "deconvnet") -> jax.Array:
    """Project one unit of ``layer`` back to pixel space (Zeiler & Fergus 2014 Fig. 1/2; Springenberg et al. 2015).

    The backward pass starts from ``layer`` with every activation zero except the chosen unit, which
    keeps its value. ``unit`` is ``channel`` (or ``(channel,)``: the strongest location of that
    feature map in each image, as in the papers) or ``(channel, i, j)`` for a fixed location; for a
    dense layer ``(B, N)`` it is the neuron index.

    Args:
      method: ``"deconvnet"``, ``"guided"`` or ``"gradient"``.

    Returns:
      ``(B, H, W, C)`` projections.
    """
    model = C.require_model(model, "unit_projection")
    C.check_choice("method", method, tuple(RULES))
    x = C.check_pixels(model, x)
    layer = C.check_layer(model, layer)
    unit = (unit,) if isinstance(unit, int) else tuple(unit)
    shape = model.layer_shapes(x)[layer]
    feat = replace_relu_grad(lambda xx: model.probe(xx)[1][layer], method)
    a, vjp = jax.vjp(feat, x)
    if len(shape) == 2:
        if len(unit) != 1 or not 0 <= unit[0] < shape[1]:
            raise ShapeError(f"layer {layer!r} has shape {shape}: unit must be a neuron index in 0..{shape[1] - 1}; got {unit}.")
        mask = jnp.zeros(shape, bool).at[:, unit[0]].set(True)
    elif len(shape) == 4:
        _, h, w, k = shape
        if len(unit) not in (1, 3) or not 0 <= unit[0] < k:
            raise ShapeError(f"layer {layer!r} has shape {shape}: unit must be channel in 0..{k - 1} or (channel, i, j); got {unit}.")
        ch = a[..., unit[0]]
        if len(unit) == 1:
            flat = ch.reshape(ch.shape[0], -1)
            onehot = jax.nn.one_hot(jnp.argmax(flat, axis=1), h * w, dtype=bool).reshape(ch.shape)
        else:
            i, j = unit[1:]
            if not (0 <= i < h and 0 <= j < w):
                raise ShapeError(f"location ({i}, {j}) is outside layer {layer!r} of size {h}x{w}.")
            onehot = jnp.zeros(ch.shape, bool).at[:, i, j].set(True)
        mask = jnp.zeros(shape, bool).at[..., unit[0]].set(onehot)
    else:
        raise JaxvizError(f"unit_projection supports (B, N) and (B, H, W, C) layers; {layer!r} has shape {shape}.")
    (proj,) = vjp(jnp.where(mask, a, jnp.zeros_like(a)))
    return proj
