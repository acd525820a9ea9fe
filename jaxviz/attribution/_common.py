"""Shared plumbing of the attribution methods: model/target handling, validation, chunked maps."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models.contract import Model, as_pixels, check_targets
from jaxviz.models.ops import batch_is_split

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
    """``x -> logits`` for a :class:`Model` with a classifier head, or a plain callable."""
    if isinstance(model_or_fn, Model):
        model_or_fn.require_head("attribution to a class")
        return model_or_fn
    if not callable(model_or_fn):
        raise JaxvizError(f"expected a jaxviz Model or a callable f(x) -> logits; got {type(model_or_fn).__name__}.")
    return model_or_fn


def check_pixels(model_or_fn: Any, x: ArrayLike) -> jax.Array:
    """A floating ``(B, H, W, C)`` batch (dtype kept; uint8 scaled); NaN/inf rejected when ``x`` is concrete."""
    if isinstance(model_or_fn, Model):
        x = model_or_fn.check_input(x)
    else:
        shape = np.shape(x)
        if len(shape) != 4:
            hint = " Add a batch axis with x[None]." if len(shape) == 3 else ""
            raise ShapeError(f"attribution expects a batch (B, H, W, C); got an array of shape {shape}.{hint}")
        x = as_pixels(x, model_name(model_or_fn))
    finite = jnp.isfinite(x).all()  # reduced where x lives: one bool comes back, not the batch
    if is_concrete(finite) and not bool(finite):
        bad = int(jnp.sum(~jnp.isfinite(x)))
        raise JaxvizError(f"the input batch contains {bad} NaN or infinite value(s); clean or mask them before attributing.")
    return x


def check_logits_shape(model_or_fn: Any, x: jax.Array) -> int:
    """Number of classes; :class:`ShapeError` unless the model maps ``(B, ...)`` to ``(B, classes)``."""
    out = _logits_spec(logit_fn(model_or_fn), x.shape, x.dtype)
    if not hasattr(out, "shape") or len(out.shape) != 2 or out.shape[0] != x.shape[0]:
        got = getattr(out, "shape", type(out).__name__)
        raise ShapeError(
            f"{model_name(model_or_fn)} must return logits of shape (B, classes) = ({x.shape[0]}, classes); got {got}. "
            "Wrap it, e.g. lambda x: f(x).reshape(x.shape[0], -1)."
        )
    return int(out.shape[1])


def _logits_spec(f: Model | LogitFn, shape: tuple[int, ...], dtype: Any) -> Any:
    """``jax.eval_shape(f, x)``, remembered for a :class:`Model` by its structure and leaf shapes: tracing
    SqueezeNet to learn its output shape took 46 ms, more than the compiled gradient on a GPU."""
    if isinstance(f, Model):
        leaves, treedef = jax.tree.flatten(f)
        try:
            specs = tuple((np.shape(a), np.dtype(a.dtype) if hasattr(a, "dtype") else np.result_type(a)) for a in leaves)
            return _abstract_logits(treedef, specs, tuple(shape), np.dtype(dtype))
        except TypeError:  # a static field that cannot be hashed: trace every time
            pass
    return jax.eval_shape(f, jax.ShapeDtypeStruct(shape, dtype))


@functools.lru_cache(maxsize=32)
def _abstract_logits(treedef: Any, leaves: tuple, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    model = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(s, d) for s, d in leaves])
    return jax.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct(shape, dtype))


def prepare(model_or_fn: Any, x: ArrayLike, target: ArrayLike) -> tuple[LogitFn, jax.Array, jax.Array]:
    """Validate and return ``(f, x, targets)`` for a method attributing a class logit."""
    f = logit_fn(model_or_fn)
    x = check_pixels(model_or_fn, x)
    n = check_logits_shape(model_or_fn, x)
    t = check_targets(target, x.shape[0], n, model_name(model_or_fn))
    return f, x, t


def select(logits: jax.Array, t: jax.Array) -> jax.Array:
    """``logits[b, t[b]]`` for each example."""
    return jnp.take_along_axis(logits, t[:, None], axis=1)[:, 0]


# On CPU a gradient pass over a batch of large images runs faster in pieces of a few images, one
# `lax.map` step each (the activations of a piece stay in the caches). SqueezeNet's input gradient at
# 227 px, interleaved in one process (2-core AMD EPYC): batch 8 in pieces of 4 images 0.91x the time
# of the whole batch (pieces of 2: 0.94x, of 1: 0.90x); batch 16 0.81x (2: 0.79x, 8: 0.89x).
CPU_PIXELS_PER_PASS = 4 * 227 * 227


def target_grad(f: LogitFn, x: jax.Array, t: jax.Array) -> jax.Array:
    """Per-example gradient of the target logit with respect to the input.

    On CPU a batch of more than ``CPU_PIXELS_PER_PASS`` input pixels runs as a ``lax.map`` over pieces
    of the batch, so ``f`` must treat examples independently (as the attribution methods assume; a
    function using batch statistics would see one piece at a time); elsewhere, and for a batch split
    over devices, in one pass.
    """
    def grad(xs, ts):
        return jax.grad(lambda xx: select(f(xx), ts).sum())(xs)

    n, per_image = x.shape[0], max(1, int(np.prod(x.shape[1:3])))
    piece = max(1, CPU_PIXELS_PER_PASS // per_image)
    if jax.default_backend() != "cpu" or n <= piece or batch_is_split(x):
        return grad(x, t)
    pieces = _chunks((x, t), -(-n // -(-n // piece)))[0]  # as few pieces as needed, evenly filled
    out = jax.lax.map(lambda p: grad(*p), pieces)
    return out.reshape(-1, *out.shape[2:])[:n]


def require_model(model_or_fn: Any, what: str) -> Model:
    if not isinstance(model_or_fn, Model):
        raise JaxvizError(
            f"{what} needs named layers: pass a jaxviz Model (wrap plain functions with "
            "jaxviz.models.adapters.from_functions(features, head)); got {type(model_or_fn).__name__}."
        )
    return model_or_fn


def check_layer(model: Model, layer: str) -> str:
    return model.check_layers([layer])[0]


MODEL_ARGS = ("model_or_fn", "model")  # the parameter naming the network, in every public method


def compiled(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run eager calls of an attribution method as one cached ``jax.jit`` program.

    Inside a trace (the caller's ``jit``, ``vmap``, ``grad``) the method runs as written. Called with
    concrete arrays, the checks that need values (NaN, class range) run first, then the method is
    compiled once per input shapes and settings and reused: a second call on new images of the same
    shape does not retrace. Arrays, keys and models are traced; everything else (methods, strings,
    numbers -- NumPy scalars become Python numbers --, plain callables) is static, and an unhashable
    setting makes the call run op by op. The method must take its network as ``model_or_fn`` or
    ``model`` and its images as ``x`` (and its classes as ``target``, if any).
    """
    sig = inspect.signature(method)
    var_kw = next((p.name for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    model_arg = next((a for a in MODEL_ARGS if a in sig.parameters), None)
    if model_arg is None or "x" not in sig.parameters:
        raise TypeError(f"compiled: {method.__name__} must take its network as one of {MODEL_ARGS} and its images as x")

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs))):
            return method(*args, **kwargs)
        arguments = sig.bind(*args, **kwargs).arguments
        arguments.update(arguments.pop(var_kw, {}) if var_kw else {})
        for name in ("x", "target"):
            if isinstance(arguments.get(name), (list, tuple)):
                arguments[name] = np.asarray(arguments[name])
        if "target" in arguments:
            prepare(arguments[model_arg], arguments["x"], arguments["target"])
        else:
            check_pixels(arguments[model_arg], arguments["x"])
        arguments = {k: v.item() if isinstance(v, np.generic) else v for k, v in arguments.items()}
        traced = {k: v for k, v in arguments.items() if isinstance(v, (jax.Array, np.ndarray, Model))}
        static = tuple((k, v) for k, v in arguments.items() if k not in traced)
        try:
            hash(static)
        except TypeError:
            return method(**arguments)
        return _run_compiled(method, traced, static)

    return wrapper


def accepts_key(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes a ``key`` argument (so a wrapper such as SmoothGrad passes it one)."""
    try:
        return "key" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


@functools.partial(jax.jit, static_argnums=(0, 2))
def _run_compiled(method: Callable[..., Any], traced: dict[str, Any], static: tuple[tuple[str, Any], ...]) -> Any:
    return method(**traced, **dict(static))


def fold(xs: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Stack ``c`` perturbed copies ``(c, B, ...)`` of a batch into one batch ``(B * c, ...)`` plus its targets.

    The merged batch is batch-major (example ``b``'s copies are adjacent), so a batch sharded over
    devices on its leading axis stays sharded the same way; :func:`unfold` undoes it.
    """
    c = xs.shape[0]
    merged = jnp.moveaxis(xs, 0, 1)
    return merged.reshape(-1, *merged.shape[2:]), jnp.broadcast_to(t[:, None], (t.shape[0], c)).reshape(-1)


def unfold(out: Any, c: int) -> Any:
    """``(B * c, ...)`` outputs of a :func:`fold` batch back to ``(B, c, ...)`` (a pytree is fine)."""
    return jax.tree.map(lambda o: o.reshape(-1, c, *o.shape[1:]), out)


CPU_IMAGES_PER_STEP = 16  # on CPU one batch of about this many images per compiled step is fastest (benchmarks/)


def auto_chunk(chunk_size: int | str | None, batch: int, n_items: int, accelerator_default: int) -> int | None:
    """The chunk size of a multi-sample method: ``chunk_size`` itself unless it is ``"auto"``.

    ``"auto"`` on CPU folds about ``CPU_IMAGES_PER_STEP`` images into each compiled step (one copy of
    a batch of 16 or more; several copies of a smaller one), spread evenly over the steps: on CPU one
    large folded batch runs slower per image than several passes of one batch. On GPU and TPU it is
    ``accelerator_default`` copies per step, which keeps those devices busy.
    """
    if not (isinstance(chunk_size, str) and chunk_size == "auto"):
        return chunk_size
    if jax.default_backend() != "cpu":
        return accelerator_default
    per_step = max(1, CPU_IMAGES_PER_STEP // max(int(batch), 1))
    steps = -(-int(n_items) // per_step)
    return -(-int(n_items) // steps)


def _chunks(items: Any, chunk_size: int | None) -> tuple[Any, int, int, int]:
    """``items`` split along the leading axis into ``(n_chunks, chunk, ...)``, the last chunk padded."""
    n = jax.tree.leaves(items)[0].shape[0]
    chunk = n if chunk_size is None else min(check_positive("chunk_size", chunk_size), n)
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def split(a):
        a = jnp.asarray(a)
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) if pad else a
        return a.reshape(n_chunks, chunk, *a.shape[1:])

    return jax.tree.map(split, items), n, chunk, n_chunks


def chunked_sum(fn: Callable[[Any], Any], items: Any, chunk_size: int | None, weights: ArrayLike | None = None) -> Any:
    """``sum_i w_i fn(items[i])`` over the leading axis of ``items``, ``chunk_size`` items per call.

    ``fn`` takes a chunk ``(c, ...)`` of items and returns a pytree of ``(B, c, ...)`` arrays (build its
    batch with :func:`fold` / :func:`unfold`). A ``lax.scan`` carries the running sum, so memory is
    bounded by the chunk size, not by the number of items; a padded last chunk gets weight 0.
    """
    chunks, n, chunk, n_chunks = _chunks(items, chunk_size)
    w = jnp.ones((n,), jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    w = jnp.concatenate([w, jnp.zeros((n_chunks * chunk - n,), w.dtype)]).reshape(n_chunks, chunk)

    def body(acc, inp):
        part = jax.tree.map(lambda o: jnp.tensordot(o, inp[1].astype(o.dtype), axes=([1], [0])), fn(inp[0]))
        return (part if acc is None else jax.tree.map(jnp.add, acc, part)), None

    acc, _ = body(None, (jax.tree.map(lambda a: a[0], chunks), w[0]))
    if n_chunks > 1:
        acc, _ = jax.lax.scan(body, acc, (jax.tree.map(lambda a: a[1:], chunks), w[1:]))
    return acc


def chunked_map(fn: Callable[[Any], Any], items: Any, chunk_size: int | None) -> Any:
    """``fn`` over the leading axis of ``items`` in chunks; ``fn`` maps ``(c, ...)`` items to ``(B, c, ...)``.

    Returns ``(B, n, ...)`` outputs (a pytree is fine), one ``lax.map`` step per chunk.
    """
    chunks, n, _, n_chunks = _chunks(items, chunk_size)
    if n_chunks == 1:
        return fn(jax.tree.map(lambda a: a[0], chunks))
    out = jax.lax.map(fn, chunks)  # (n_chunks, B, c, ...)

    def merge(o):
        o = jnp.moveaxis(o, 0, 1)
        return o.reshape(o.shape[0], -1, *o.shape[3:])[:, :n]

    return jax.tree.map(merge, out)


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
