"""Shared plumbing of the attribution methods: model/target handling, validation, chunked maps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError, TargetError
from jaxviz.models.contract import Model

LogitFn = Callable[[jax.Array], jax.Array]


def is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_positive(name: str, value: Any) -> int:
    """``value`` as a positive int, or a :class:`JaxvizError` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise JaxvizError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def check_choice(name: str, value: Any, choices) -> Any:
    if value not in choices:
        raise JaxvizError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}.")
    return value


def model_name(model_or_fn: Any) -> str:
    if isinstance(model_or_fn, Model):
        return model_or_fn.name
    return getattr(model_or_fn, "__name__", type(model_or_fn).__name__)


def logit_fn(model_or_fn: Model | LogitFn) -> LogitFn:
    """``x -> logits`` for a :class:`Model` or a plain callable."""
    if isinstance(model_or_fn, Model):
        return model_or_fn
    if not callable(model_or_fn):
        raise JaxvizError(f"expected a jaxviz Model or a callable f(x) -> logits; got {type(model_or_fn).__name__}.")
    return model_or_fn


def check_pixels(model_or_fn: Any, x: ArrayLike) -> jax.Array:
    """A float32 ``(B, H, W, C)`` batch; NaN/inf rejected when ``x`` is concrete."""
    if isinstance(model_or_fn, Model):
        x = model_or_fn.check_input(x)
    else:
        shape = np.shape(x)
        if len(shape) != 4:
            hint = " Add a batch axis with x[None]." if len(shape) == 3 else ""
            raise ShapeError(f"attribution expects a batch (B, H, W, C); got an array of shape {shape}.{hint}")
        x = jnp.asarray(x, jnp.float32)
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        bad = int(np.sum(~np.isfinite(np.asarray(x))))
        raise JaxvizError(f"the input batch contains {bad} NaN or infinite value(s); clean or mask them before attributing.")
    return x


def check_logits_shape(model_or_fn: Any, x: jax.Array) -> int:
    """Number of classes; :class:`ShapeError` unless the model maps ``(B, ...)`` to ``(B, classes)``."""
    out = jax.eval_shape(logit_fn(model_or_fn), jax.ShapeDtypeStruct(x.shape, x.dtype))
    if not hasattr(out, "shape") or len(out.shape) != 2 or out.shape[0] != x.shape[0]:
        got = getattr(out, "shape", type(out).__name__)
        raise ShapeError(
            f"{model_name(model_or_fn)} must return logits of shape (B, classes) = ({x.shape[0]}, classes); got {got}. "
            "Wrap it, e.g. lambda x: f(x).reshape(x.shape[0], -1)."
        )
    return int(out.shape[1])


def check_targets(model_or_fn: Any, target: ArrayLike, batch: int, num_classes: int) -> jax.Array:
    """Broadcast an int or ``(B,)`` targets to ``(B,)`` int32, checking length and range."""
    if isinstance(model_or_fn, Model) and model_or_fn.input_shape is not None:
        return model_or_fn.check_targets(target, batch)
    t = target if isinstance(target, jax.core.Tracer) else np.asarray(target)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TargetError(f"targets must be integer class indices; got dtype {t.dtype}.")
    if t.ndim == 0:
        t = jnp.full((batch,), t, jnp.int32)
    if t.ndim != 1 or t.shape[0] != batch:
        raise TargetError(f"targets must be an int or shape ({batch},) for a batch of {batch}; got shape {t.shape}.")
    if is_concrete(t):
        tn = np.asarray(t)
        bad = tn[(tn < 0) | (tn >= num_classes)]
        if bad.size:
            raise TargetError(
                f"class index {int(bad[0])} out of range for {model_name(model_or_fn)} with {num_classes} classes (0..{num_classes - 1})."
            )
    return jnp.asarray(t, jnp.int32)


def prepare(model_or_fn: Any, x: ArrayLike, target: ArrayLike) -> tuple[LogitFn, jax.Array, jax.Array]:
    """Validate and return ``(f, x, targets)`` for an input-gradient method."""
    f = logit_fn(model_or_fn)
    x = check_pixels(model_or_fn, x)
    n = check_logits_shape(model_or_fn, x)
    t = check_targets(model_or_fn, target, x.shape[0], n)
    return f, x, t


def select(logits: jax.Array, t: jax.Array) -> jax.Array:
    """``logits[b, t[b]]`` for each example."""
    return jnp.take_along_axis(logits, t[:, None], axis=1)[:, 0]


def target_grad(f: LogitFn, x: jax.Array, t: jax.Array) -> jax.Array:
    """Per-example gradient of the target logit with respect to the input."""
    return jax.grad(lambda xx: select(f(xx), t).sum())(x)


def require_model(model_or_fn: Any, what: str) -> Model:
    if not isinstance(model_or_fn, Model):
        raise JaxvizError(
            f"{what} needs named layers: pass a jaxviz Model (wrap plain functions with "
            "jaxviz.models.adapters.from_functions(features, head)); got {type(model_or_fn).__name__}."
        )
    return model_or_fn


def check_layer(model: Model, layer: str) -> str:
    return model.check_layers([layer])[0]


def chunked_sum(fn: Callable[[Any], Any], xs: Any, n: int, chunk_size: int | None, weights: jax.Array | None = None) -> Any:
    """``sum_i w_i fn(xs[i])`` over the leading axis of ``xs`` (length ``n``), ``chunk_size`` at a time.

    Each chunk is one ``vmap`` call; a ``lax.scan`` carries the running sum, so memory is bounded by the
    chunk size, not by ``n``. ``n`` need not divide evenly: the last chunk is padded and masked.
    """
    chunk = n if chunk_size is None else min(check_positive("chunk_size", chunk_size), n)
    w = jnp.ones((n,), jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def padded(a):
        a = jnp.asarray(a)
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) if pad else a
        return a.reshape(n_chunks, chunk, *a.shape[1:])

    xs_c = jax.tree.map(padded, xs)
    w_c = jnp.concatenate([w, jnp.zeros((pad,), w.dtype)]).reshape(n_chunks, chunk)

    def body(acc, inp):
        xc, wc = inp
        out = jax.vmap(fn)(xc)
        part = jax.tree.map(lambda o: jnp.tensordot(wc.astype(o.dtype), o, axes=1), out)
        return (part if acc is None else jax.tree.map(jnp.add, acc, part)), None

    first = jax.tree.map(lambda a: a[0], xs_c)
    acc, _ = body(None, (first, w_c[0]))
    if n_chunks > 1:
        rest = jax.tree.map(lambda a: a[1:], xs_c)
        acc, _ = jax.lax.scan(body, acc, (rest, w_c[1:]))
    return acc


def chunked_map(fn: Callable[[Any], Any], xs: Any, chunk_size: int | None) -> Any:
    """``lax.map`` of ``fn`` over the leading axis of ``xs``, ``chunk_size`` at a time (vmapped inside)."""
    n = jax.tree.leaves(xs)[0].shape[0]
    chunk = n if chunk_size is None else min(check_positive("chunk_size", chunk_size), n)
    if chunk >= n:
        return jax.vmap(fn)(xs)
    return jax.lax.map(fn, xs, batch_size=chunk)


def resize_maps(maps: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Bilinear resize of ``(B, h, w)`` maps to ``(B, H, W)`` (half-pixel centres, like ``F.interpolate``)."""
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    return jax.image.resize(maps, (maps.shape[0], *size), method="linear", antialias=False)


def reduce_channels(a: jax.Array, reduce: str | None) -> jax.Array:
    """``None``: signed ``(B,H,W,C)``; ``"abs"``; ``"max_abs"`` (Simonyan et al. 2014) or ``"sum_abs"``/``"sum"`` -> ``(B,H,W)``."""
    check_choice("reduce", reduce, (None, "abs", "max_abs", "sum_abs", "sum"))
    if reduce is None:
        return a
    if reduce == "abs":
        return jnp.abs(a)
    if reduce == "max_abs":
        return jnp.abs(a).max(axis=-1)
    if reduce == "sum_abs":
        return jnp.abs(a).sum(axis=-1)
    return a.sum(axis=-1)
