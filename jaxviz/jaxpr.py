"""A small jaxpr interpreter with per-equation hooks (the pattern of JAX's "Writing custom
interpreters" notebook), used to swap ReLU gradients (guided backprop, deconvnet), to expose bias terms (FullGrad) and to
replace max pooling by average pooling (style) in any JAX function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore

# Call-like primitives whose body is inlined when it contains something to rewrite; the key holds the body.
CALL_BODIES = {
    "pjit": "jaxpr",
    "jit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "remat": "jaxpr",
    "remat2": "jaxpr",
    "checkpoint": "jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
}


def body_of(eqn) -> tuple[Any, Sequence[Any]] | None:
    """``(jaxpr, consts)`` of a call-like equation, else ``None``."""
    key = CALL_BODIES.get(eqn.primitive.name)
    if key is None or key not in eqn.params:
        return None
    body = eqn.params[key]
    if isinstance(body, jcore.ClosedJaxpr):
        return body.jaxpr, body.consts
    if isinstance(body, jcore.Jaxpr):
        return body, ()
    return None


def default_eval(eqn, invals):
    r = eqn.primitive.get_bind_params(eqn.params)
    subfuns, bind_params = ([], r) if isinstance(r, dict) else r  # jax < 0.7 returns (subfuns, params)
    ctx = getattr(getattr(eqn, "ctx", None), "manager", None)
    if ctx is None:
        out = eqn.primitive.bind(*subfuns, *invals, **bind_params)
    else:
        with ctx:
            out = eqn.primitive.bind(*subfuns, *invals, **bind_params)
    return out if eqn.primitive.multiple_results else [out]


class Interpreter:
    """Evaluates a jaxpr; each variable carries a value and a hashable tag (``tag_of`` decides).

    Subclasses override :meth:`rule` (return outputs to replace an equation, else ``None``),
    :meth:`tags` (output tags of an equation) and :meth:`wants` (whether a call body must be inlined).
    """

    def rule(self, eqn, vals, tags) -> list | None:
        return None

    def tags(self, eqn, vals, tags) -> list:
        return [None] * len(eqn.outvars)

    def const_tag(self, value) -> Any:
        return None

    def literal_tag(self, value) -> Any:
        return self.const_tag(value)

    def wants(self, jaxpr) -> bool:
        """Whether ``jaxpr`` (recursively) contains an equation :meth:`rule` might rewrite."""
        return True

    def run(self, jaxpr, consts, args, arg_tags) -> tuple[list, list]:
        env: dict = {}

        def read(v):
            if isinstance(v, jcore.Literal):
                return v.val, self.literal_tag(v.val)
            return env[v]

        for v, c in zip(jaxpr.constvars, consts):
            env[v] = (c, self.const_tag(c))
        for v, a, tg in zip(jaxpr.invars, args, arg_tags):
            env[v] = (a, tg)
        for eqn in jaxpr.eqns:
            pairs = [read(v) for v in eqn.invars]
            vals = [p[0] for p in pairs]
            tags = [p[1] for p in pairs]
            body = body_of(eqn)
            if body is not None and self.wants(body[0]):
                sub, sub_consts = body
                outs, out_tags = self.run(sub, sub_consts, vals, tags)
            else:
                outs = self.rule(eqn, vals, tags)
                if outs is None:
                    outs = default_eval(eqn, vals)
                out_tags = self.tags(eqn, vals, tags)
            for v, o, tg in zip(eqn.outvars, outs, out_tags):
                if not isinstance(v, jcore.DropVar):
                    env[v] = (o, tg)
        res = [read(v) for v in jaxpr.outvars]
        return [r[0] for r in res], [r[1] for r in res]


def any_eqn(jaxpr, pred: Callable[[Any], bool]) -> bool:
    """Whether some equation of ``jaxpr`` or of its call bodies satisfies ``pred``."""
    for eqn in jaxpr.eqns:
        if pred(eqn):
            return True
        body = body_of(eqn)
        if body is not None and any_eqn(body[0], pred):
            return True
    return False


def is_concrete_zero(value) -> bool:
    if isinstance(value, jax.core.Tracer):
        return False
    try:
        a = np.asarray(value)
    except Exception:  # noqa: BLE001 - opaque constants (keys, tokens) are simply not zero
        return False
    return a.dtype.kind == "f" and a.size > 0 and not np.any(a)
