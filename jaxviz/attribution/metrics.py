"""Quantitative checks of saliency maps: deletion/insertion AUC, model-randomisation sanity check,
Integrated-Gradients completeness.

References:
  Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
  BMVC 2018 (deletion and insertion).
  Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018 (cascading randomisation).
  Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017 (completeness).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore
from jax.typing import ArrayLike

from jaxviz.attribution import _common as C
from jaxviz.attribution.gradients import completeness_error, gaussian_blur, make_baseline
from jaxviz.errors import JaxvizError, ShapeError


class Curve(NamedTuple):
    """A deletion or insertion curve: ``auc`` (B,) and the scores ``curve`` (B, steps + 1) at fractions ``fractions``."""

    auc: jax.Array
    curve: jax.Array
    fractions: jax.Array


def _ranks(saliency: jax.Array, x_shape) -> jax.Array:
    s = jnp.asarray(saliency, jnp.float32)
    if s.ndim == 4:
        s = s.sum(axis=-1)
    if s.shape != tuple(x_shape[:3]):
        raise ShapeError(f"saliency must be (B, H, W) or (B, H, W, C) matching the input {tuple(x_shape)}; got {tuple(jnp.shape(saliency))}.")
    flat = s.reshape(s.shape[0], -1)
    order = jnp.argsort(-flat, axis=1, stable=True)  # most salient first
    return jnp.argsort(order, axis=1).reshape(s.shape)  # inverse permutation: rank of each pixel


def _curve(model_or_fn, x, target, saliency, steps, baseline, chunk_size, output, insert, key, blur_sigma):
    steps = C.check_positive("steps", steps)
    C.check_choice("output", output, ("prob", "logit"))
    f, x, t = C.prepare(model_or_fn, x, target)
    base = make_baseline(x, baseline, key, blur_sigma)
    ranks = _ranks(saliency, x.shape)
    npix = x.shape[1] * x.shape[2]
    counts = jnp.asarray(np.rint(np.arange(steps + 1) * npix / steps), jnp.int32)

    def perturbed(n):
        m = (ranks < n)[..., None]
        return jnp.where(m, x, base) if insert else jnp.where(m, base, x)

    def scores(ns):  # (c,) pixel counts -> (B, c) target scores
        xb, tb = C.fold(jax.vmap(perturbed)(ns), t)
        logits = f(xb)
        return C.unfold(C.select(jax.nn.softmax(logits) if output == "prob" else logits, tb), len(ns))

    curve = C.chunked_map(scores, counts, C.auto_chunk(chunk_size, x.shape[0], steps + 1, 16))  # (B, steps + 1)
    auc = (curve.sum(axis=1) - 0.5 * (curve[:, 0] + curve[:, -1])) / steps
    return Curve(auc, curve, counts.astype(jnp.float32) / npix)


@C.compiled
def deletion(
    model_or_fn, x: ArrayLike, target: ArrayLike, saliency: ArrayLike, *, steps: int = 32, baseline: Any = "black",
    output: str = "prob", chunk_size: int | str | None = "auto", blur_sigma: float | None = None, key: jax.Array | None = None,
) -> Curve:
    """Deletion (Petsiuk et al. 2018): remove the most salient pixels first (set to ``baseline``); lower AUC is better.

    ``saliency`` is ``(B, H, W)`` or ``(B, H, W, C)`` (summed over channels; pass ``abs`` maps for
    unsigned ranking). The ``steps + 1`` images of the curve are evaluated ``chunk_size`` at a time
    (``"auto"``: about 16 images per call on CPU, 16 on accelerators).
    """
    return _curve(model_or_fn, x, target, saliency, steps, baseline, chunk_size, output, False, key, blur_sigma)


@C.compiled
def insertion(
    model_or_fn, x: ArrayLike, target: ArrayLike, saliency: ArrayLike, *, steps: int = 32, baseline: Any = "blur",
    output: str = "prob", chunk_size: int | str | None = "auto", blur_sigma: float | None = None, key: jax.Array | None = None,
) -> Curve:
    """Insertion (Petsiuk et al. 2018): paste the most salient pixels first onto a blurred canvas; higher AUC is better."""
    return _curve(model_or_fn, x, target, saliency, steps, baseline, chunk_size, output, True, key, blur_sigma)


# -- sanity check ----------------------------------------------------------------------------------


def spearman(a: ArrayLike, b: ArrayLike) -> jax.Array:
    """Spearman rank correlation between ``a[i]`` and ``b[i]`` flattened, per example ``(B,)`` (ties by order)."""
    a = jnp.asarray(a).reshape(jnp.shape(a)[0], -1)
    b = jnp.asarray(b).reshape(jnp.shape(b)[0], -1)

    def rank(v):
        return jnp.argsort(jnp.argsort(v, axis=1), axis=1).astype(jnp.float32)

    ra, rb = rank(a), rank(b)
    ra = ra - ra.mean(axis=1, keepdims=True)
    rb = rb - rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / jnp.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))


class SanityCheck(NamedTuple):
    """Cascading randomisation result: ``spearman[k]`` compares the map with groups ``layers[:k+1]`` randomised."""

    layers: tuple[str, ...]  # parameter groups, output side first
    spearman: jax.Array  # (len(layers), B) rank correlation of |map| with the original |map|


def parameter_groups(model) -> list[tuple[str, list[int]]]:
    """Parameter leaves grouped by module path, in the order the forward pass first uses them."""
    model = C.require_model(model, "parameter_groups")
    leaves, _ = jax.tree_util.tree_flatten_with_path(model.params)
    groups: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(leaves):
        keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        while len(keys) > 1 and isinstance(path[len(keys) - 1], jax.tree_util.GetAttrKey):
            keys.pop()  # nnx Param(...).value wrappers
        name = "/".join(keys[:-1] if len(keys) > 1 else keys) or "params"
        groups.setdefault(name, []).append(i)
    if model.input_shape is None:
        return list(groups.items())
    flat = [v for _, v in leaves]
    treedef = jax.tree.structure(model.params)
    x = jnp.zeros((1, *model.input_shape), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda *ls: model.apply(jax.tree.unflatten(treedef, ls), x))(*flat).jaxpr
    first = {v: len(jaxpr.eqns) for v in jaxpr.invars}
    for k, eqn in enumerate(jaxpr.eqns):
        for v in eqn.invars:
            if not isinstance(v, jcore.Literal) and v in first and first[v] > k:
                first[v] = k
    use = [first[v] for v in jaxpr.invars]
    return sorted(groups.items(), key=lambda g: min(use[i] for i in g[1]))


def model_randomisation(
    method: Callable[..., jax.Array], model, x: ArrayLike, target: ArrayLike, *, key: jax.Array, **method_kwargs: Any
) -> SanityCheck:
    """Cascading model-parameter randomisation (Adebayo et al. 2018).

    Re-initialises parameter groups one at a time from the output layer down (with ``model.init`` if the
    model has one, else Gaussian noise with each tensor's own standard deviation), recomputes
    ``method(model, x, target, **method_kwargs)`` each time and returns the Spearman rank correlation of its
    absolute value with the original map. A method that passes the check gives low correlations.
    The method is jitted once; every randomisation reuses the compilation.
    """
    model = C.require_model(model, "model_randomisation")
    if key is None:
        raise JaxvizError("model_randomisation needs an explicit key: key=jax.random.key(0).")
    _, x, t = C.prepare(model, x, target)
    run = jax.jit(lambda m: method(m, x, t, **method_kwargs))
    ref = jnp.abs(run(model))
    groups = parameter_groups(model)
    leaves, treedef = jax.tree.flatten(model.params)
    k_init, k_noise = jax.random.split(key)
    fresh = jax.tree.leaves(model.init(k_init)) if model.init is not None else None
    noise_keys = jax.random.split(k_noise, len(leaves))
    current = list(leaves)
    names, rhos = [], []
    for name, idx in reversed(groups):
        for i in idx:
            leaf = jnp.asarray(leaves[i])
            if fresh is not None and jnp.shape(fresh[i]) == leaf.shape:
                current[i] = jnp.asarray(fresh[i], leaf.dtype)
            elif jnp.issubdtype(leaf.dtype, jnp.floating):
                current[i] = (jnp.std(leaf) * jax.random.normal(noise_keys[i], leaf.shape)).astype(leaf.dtype)
        m = model.replace(params=jax.tree.unflatten(treedef, current))
        names.append(name)
        rhos.append(spearman(ref, jnp.abs(run(m))))
    return SanityCheck(tuple(names), jnp.stack(rhos))


# -- completeness ----------------------------------------------------------------------------------


@C.compiled
def completeness(model_or_fn, x: ArrayLike, target: ArrayLike, attributions: ArrayLike, *, baseline: Any = "black",
                 key: jax.Array | None = None, relative: bool = False) -> jax.Array:
    """IG completeness error ``sum(attr) - (f(x) - f(x'))`` per example (Sundararajan et al. 2017).

    With ``relative=True`` the error is divided by ``|f(x) - f(x')|``.
    """
    f, x, t = C.prepare(model_or_fn, x, target)
    base = make_baseline(x, baseline, key)
    err = completeness_error(f, x, base, t, jnp.asarray(attributions, jnp.float32))
    if not relative:
        return err
    gap = C.select(f(x), t) - C.select(f(base), t)
    return err / jnp.maximum(jnp.abs(gap), 1e-12)


__all__ = ["Curve", "SanityCheck", "completeness", "deletion", "gaussian_blur", "insertion", "model_randomisation", "parameter_groups", "spearman"]
