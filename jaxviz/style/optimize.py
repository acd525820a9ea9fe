"""The image optimisation behind texture synthesis, style transfer and doodles.

One objective (:class:`Objective`) covers the three methods of Gatys et al. and Champandard:
``beta * sum_l w_l E_l + alpha * L_content + tv * TV`` per image, with plain or masked (per segment)
statistics. :func:`optimize_image` minimises it over the pixels with L-BFGS (``optax.lbfgs`` with a
zoom line search, as the papers) or Adam, inside one compiled ``lax.scan``; it stops early, keeping the
last good image, when the loss turns NaN or the line search cannot decrease the loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.errors import JaxvizError
from jaxviz.style.features import Extractor
from jaxviz.style.stats import (
    check_statistic,
    content_loss,
    layer_style_loss,
    masked_statistic,
    style_statistic,
    total_variation,
)

METHODS = ("lbfgs", "adam")
STATUS = ("ok", "nan", "linesearch_failed")
LINESEARCH_STEPS = 20


@dataclasses.dataclass(frozen=True)
class Objective:
    """What to match; hashable, so compiled programs are reused across calls with the same settings.

    Attributes:
      style_layers: layers whose statistics are matched; their weights ``w_l`` are an argument
        (``args["layer_weights"]``, shape ``(1 or B, layers)``), so one compiled program serves every
        layer subset (weight 0 drops a layer).
      statistic: ``"gram"``, ``"covariance"`` or ``"mean"`` (see :mod:`jaxviz.style.stats`).
      content_layer: layer whose activations are matched (``None``: no content term).
      masked: statistics per segment (neural doodles); the arguments then carry ``masks``.
      normalize: divide each layer's loss by its target's ``E_l`` against zero (``mean(T^2)/4``), and the
        content loss by ``mean(P^2)/2``, so every term is a relative squared error and ``alpha/beta`` and
        layer weights mean the same on any network; ``False`` gives Gatys' equations as printed.
    """

    style_layers: tuple[str, ...]
    statistic: str = "gram"
    content_layer: str | None = None
    masked: bool = False
    normalize: bool = True

    def __post_init__(self):
        check_statistic(self.statistic)

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the objective reads, style layers first."""
        extra = () if self.content_layer is None or self.content_layer in self.style_layers else (self.content_layer,)
        return self.style_layers + extra

    def statistics(self, acts: Mapping[str, jax.Array], masks: jax.Array | None = None) -> dict[str, jax.Array]:
        """``{layer: statistic}`` of activations (per segment when ``masked``)."""
        if self.masked:
            return {n: masked_statistic(acts[n], masks, self.statistic) for n in self.style_layers}
        return {n: style_statistic(acts[n], self.statistic) for n in self.style_layers}

    def terms(self, acts: Mapping[str, jax.Array], x: jax.Array, args: Mapping[str, Any]) -> dict[str, jax.Array]:
        """Unweighted ``style``, ``content`` and ``tv`` losses per image, each ``(B,)``."""
        stats = self.statistics(acts, args.get("masks"))
        style, weights = 0.0, args["layer_weights"]
        for i, n in enumerate(self.style_layers):
            target = args["style"][n]
            e = layer_style_loss(stats[n], jnp.broadcast_to(target, stats[n].shape))
            if self.normalize:  # per target image: (1,) or (B,)
                e = e / (0.25 * jnp.mean(jnp.square(target).reshape(target.shape[0], -1), axis=1) + 1e-12)
            style = style + weights[:, i] * e
        out = {"style": style, "tv": total_variation(x)}
        if self.content_layer is not None:
            p = args["content"]
            c = content_loss(acts[self.content_layer], p)
            out["content"] = c / (0.5 * jnp.mean(jnp.square(p).reshape(p.shape[0], -1), axis=1) + 1e-12) if self.normalize else c
        return out

    def __call__(self, ext: Extractor, x: jax.Array, args: Mapping[str, Any]) -> jax.Array:
        """Per-image loss ``beta * style + alpha * content + tv_weight * tv``, ``(B,)``."""
        t = self.terms(ext(x), x, args)
        loss = args["beta"] * t["style"] + args["tv_weight"] * t["tv"]
        if self.content_layer is not None:
            loss = loss + args["alpha"] * t["content"]
        return loss


class OptimizeResult(NamedTuple):
    """Result of :func:`optimize_image`.

    Attributes:
      image: ``(B, H, W, C)`` the last good image, clipped to [0, 1].
      loss: ``(B,)`` the objective at ``image``.
      losses: ``(steps,)`` the summed objective before each step (NaN after an early stop).
      steps: steps taken.
      status: ``"ok"``, ``"nan"`` (the loss or image turned NaN) or ``"linesearch_failed"``.
      message: one line saying what happened.
    """

    image: jax.Array
    loss: jax.Array
    losses: np.ndarray
    steps: int
    status: str
    message: str


def _optimizer(method: str, learning_rate):
    if method == "adam":
        return optax.adam(learning_rate)
    return optax.lbfgs(memory_size=10, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=LINESEARCH_STEPS))


def _run(objective: Objective, ext: Extractor, x0: jax.Array, args, learning_rate, *, method: str, steps: int):
    def total(x):
        return objective(ext, x, args).sum()

    opt = _optimizer(method, learning_rate)
    value_and_grad = optax.value_and_grad_from_state(total) if method == "lbfgs" else (lambda x, state: jax.value_and_grad(total)(x))

    def step(carry, _):
        x, state, status, n = carry
        value, grad = value_and_grad(x, state=state)
        updates, new_state = opt.update(grad, state, x, value=value, grad=grad, value_fn=total)
        new_x = optax.apply_updates(x, updates)
        if method == "adam":
            new_x = jnp.clip(new_x, 0.0, 1.0)  # projected gradient: pixels stay valid
            failed = jnp.array(False)
        else:  # no progress, and the line search gave up or ran out of trials
            info = optax.tree_utils.tree_get(new_state, "info")
            new_value = optax.tree_utils.tree_get(new_state, "value")
            failed = ~(new_value < value) & ((info.decrease_error > 0) | (info.num_linesearch_steps >= LINESEARCH_STEPS))
        nan = ~jnp.isfinite(value) | ~jnp.all(jnp.isfinite(new_x))
        new_status = jnp.where(status > 0, status, jnp.where(nan, 1, jnp.where(failed, 2, 0)))
        keep = new_status > 0
        x_out = jnp.where(keep, x, new_x)
        state_out = jax.tree.map(lambda a, b: jnp.where(keep, a, b), state, new_state)
        return (x_out, state_out, new_status, n + (~keep).astype(jnp.int32)), jnp.where(status > 0, jnp.nan, value)

    init = (x0, opt.init(x0), jnp.array(0, jnp.int32), jnp.array(0, jnp.int32))
    (x, _, status, n), losses = jax.lax.scan(step, init, None, length=steps)
    image = jnp.clip(x, 0.0, 1.0)
    return image, objective(ext, image, args), losses, status, n


_run_jit = jax.jit(_run, static_argnames=("objective", "method", "steps"))


def optimize_image(objective: Objective, ext: Extractor, x0: jax.Array, args: Mapping[str, Any], *,
                   method: str = "lbfgs", steps: int = 100, learning_rate: float = 0.02) -> OptimizeResult:
    """Minimise ``objective(ext, x, args).sum()`` over pixels ``x`` from ``x0``.

    L-BFGS (Liu & Nocedal 1989; ``optax.lbfgs``, memory 10, zoom line search) runs unconstrained and the
    result is clipped to [0, 1], as Gatys et al.; Adam (Kingma & Ba 2015) is projected onto [0, 1] after
    each step. Each image's loss depends on that image only, so Adam optimises a batch as independent
    problems; L-BFGS shares one line search across the batch.

    Args:
      objective: the :class:`Objective`.
      ext: an :class:`~jaxviz.style.features.Extractor` reading ``objective.layers``.
      x0: ``(B, H, W, C)`` start image.
      args: targets and weights (``style``, ``content``, ``masks``, ``alpha``, ``beta``, ``tv_weight``).
      method: ``"lbfgs"`` or ``"adam"``.
      steps: optimiser iterations (for L-BFGS each may evaluate the loss several times).
      learning_rate: Adam's step size in pixel units (ignored by L-BFGS).

    Returns:
      An :class:`OptimizeResult`; on NaN or a failed line search the last good image, with a message.
    """
    if method not in METHODS:
        raise JaxvizError(f"unknown optimiser {method!r}; choose one of {', '.join(METHODS)}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise JaxvizError(f"steps must be a positive integer; got {steps!r}.")
    image, loss, losses, status, n = _run_jit(objective, ext, jnp.asarray(x0, jnp.float32), args,
                                              jnp.float32(learning_rate), method=method, steps=int(steps))
    status, n = STATUS[int(status)], int(n)
    if status == "nan":
        message = f"the loss turned NaN after {n} of {steps} steps; kept the last good image (lower the learning rate or the weights)."
    elif status == "linesearch_failed":
        message = (f"the L-BFGS line search could not decrease the loss after {n} of {steps} steps (converged, or the "
                   "gradient does not match the loss); kept the last good image.")
    else:
        message = f"{steps} {method} steps, final loss {float(jnp.sum(loss)):.4g}."
    return OptimizeResult(image, loss, np.asarray(losses), n, status, message)
