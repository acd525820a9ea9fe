"""FullGrad (Srinivas & Fleuret, "Full-Gradient Representation for Neural Network Visualization",
NeurIPS 2019): input-gradient x input plus the bias-gradients of every layer.

How bias terms are found (the implicit-bias formulation, general to any JAX function): the function
is traced to a jaxpr and every ``add``/``sub`` of an input-independent float tensor ``c`` (a layer
bias, a preprocessing offset such as Caffe's mean subtraction, a normalisation shift) to an
input-dependent one ``z`` is re-evaluated as ``z + c * s`` with an extra scale ``s = 1`` of ``z``'s
shape. The gradient of the target logit with respect to ``s`` is ``c * d f / d(z + c)``, exactly
FullGrad's bias-gradient ``f^b`` of that layer, per position. No layer names, taps or parameter
naming conventions are needed, so the zoo models, SqueezeNet and plain functions all work.

For a network built from linear maps, biases, ReLU and max pooling (no normalisation), Euler's
theorem gives completeness: ``sum(grad_x f * x) + sum over layers of sum(f^b) = f(x)`` (tested). With
normalisation layers the terms still exist but do not sum to ``f(x)`` (also true of the paper's
definition); ``eps`` constants inside such layers are counted as biases too.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxviz import jaxpr as J
from jaxviz.attribution import _common as C
from jaxviz.models.contract import batch_full


class FullGradTerms(NamedTuple):
    """The full-gradient decomposition of the target logit."""

    logits: jax.Array  # (B,) target logits f(x)
    input_term: jax.Array  # (B, H, W, C) grad_x f * x
    bias_terms: tuple[jax.Array, ...]  # one per bias addition, each the shape of that layer's output


def _is_float_out(eqn) -> bool:
    return jnp.issubdtype(eqn.outvars[0].aval.dtype, jnp.floating)


class _BiasInterpreter(J.Interpreter):
    """Tags: ``True`` for values that depend on the input."""

    def __init__(self, scales=None):
        self.scales = scales
        self.shapes: list[tuple[tuple[int, ...], jnp.dtype]] = []
        self._wants: dict[int, bool] = {}

    def const_tag(self, value):
        return False

    def wants(self, jaxpr):
        k = id(jaxpr)
        if k not in self._wants:
            self._wants[k] = J.any_eqn(jaxpr, lambda e: e.primitive.name in ("add", "sub"))
        return self._wants[k]

    def tags(self, eqn, vals, tags):
        return [any(bool(t) for t in tags)] * len(eqn.outvars)

    def rule(self, eqn, vals, tags):
        if eqn.primitive.name not in ("add", "sub") or not _is_float_out(eqn) or bool(tags[0]) == bool(tags[1]):
            return None
        aval = eqn.outvars[0].aval
        k = len(self.shapes)
        self.shapes.append((tuple(aval.shape), aval.dtype))
        s = jnp.ones(aval.shape, aval.dtype) if self.scales is None else self.scales[k]
        dep = 0 if tags[0] else 1
        cb = (vals[1 - dep] * s).astype(aval.dtype)
        z = vals[dep]
        if eqn.primitive.name == "add":
            return [z + cb]
        return [z - cb] if dep == 0 else [cb - z]


def fullgrad_terms(model_or_fn, x: ArrayLike, target: ArrayLike) -> FullGradTerms:
    """Input-gradient and bias-gradient terms of the target logit (see the module docstring)."""
    f, x, t = C.prepare(model_or_fn, x, target)
    closed = jax.make_jaxpr(f)(x)
    finder = _BiasInterpreter()
    jax.eval_shape(lambda xx: finder.run(closed.jaxpr, closed.consts, [xx], [True])[0], x)
    scales0 = [batch_full(x, s, 1.0, d) for s, d in finder.shapes]

    def score(xx, scales):
        out, _ = _BiasInterpreter(scales).run(closed.jaxpr, closed.consts, [xx], [True])
        y = C.select(out[0], t)
        return y.sum(), y

    (gx, gs), y = jax.grad(score, argnums=(0, 1), has_aux=True)(x, scales0)
    return FullGradTerms(y, gx * x, tuple(gs))


def _normalise(m: jax.Array) -> jax.Array:
    """FullGrad's post-processing psi: absolute value, then min-max rescaled to [0, 1] per example."""
    m = jnp.abs(m)
    axes = tuple(range(1, m.ndim))
    m = m - m.min(axis=axes, keepdims=True)
    return m / (m.max(axis=axes, keepdims=True) + 1e-6)


@C.compiled
def fullgrad(model_or_fn, x: ArrayLike, target: ArrayLike) -> jax.Array:
    """FullGrad saliency ``(B, H, W)`` (Srinivas & Fleuret 2019).

    ``psi(grad_x f * x)`` plus ``psi(f^b)`` of every spatial ``(B, h, w, K)`` bias term, where ``psi`` is
    ``abs``, per-example min-max rescaling, a sum over channels and a bilinear resize to the input,
    as in the authors' code; dense-layer bias terms enter :func:`fullgrad_terms` but not the map.
    """
    terms = fullgrad_terms(model_or_fn, x, target)
    b, h, w, _ = terms.input_term.shape
    cam = _normalise(terms.input_term).sum(axis=-1)
    for bt in terms.bias_terms:
        if bt.ndim == 4 and bt.shape[0] == b:
            cam = cam + C.resize_maps(_normalise(bt).sum(axis=-1), (h, w))
    return cam
