"""DeepDream / Inceptionism: amplify what a layer sees in a photo, at several scales (octaves).

References:
  Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", Google Research blog, 2015,
  and the reference ``deepdream.ipynb``: gradient ascent on ``mean(layer**2)`` with steps normalised by
  the mean absolute gradient, a random roll (jitter) each step, and octaves from coarse to fine that carry
  the added detail upwards.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.featureviz.objectives import Objective, layer
from jaxviz.featureviz.render import features
from jaxviz.models.contract import Model


class DreamResult(NamedTuple):
    """What :func:`deepdream` returns: the dreamed ``image`` ``(B, H, W, C)`` in [0, 1], the image after each
    octave (coarse to fine, each at its own size) and the objective ``(octaves, steps, B)`` at every step."""

    image: np.ndarray
    octaves: tuple[np.ndarray, ...]
    objective: np.ndarray


def _resize(x: jax.Array, hw: tuple[int, int]) -> jax.Array:
    return x if tuple(x.shape[1:3]) == hw else jax.image.resize(x, (x.shape[0], *hw, x.shape[3]), method="linear")


@functools.partial(jax.jit, static_argnames=("steps", "jitter"))
def _octave(model, objective, x, key, step_size, *, steps, jitter):
    """``steps`` normalised gradient-ascent steps on ``x``, each through a random roll of up to ``jitter`` px."""

    def objective_of(img):
        v = objective(features(model, objective, img))
        return v.sum(), v

    def body(x, k):
        shift = jnp.minimum(jnp.floor(jax.random.uniform(k, (2,)) * (2 * jitter + 1)).astype(jnp.int32), 2 * jitter) - jitter
        rolled = jnp.roll(x, (shift[0], shift[1]), axis=(1, 2))
        g, v = jax.grad(objective_of, has_aux=True)(rolled)
        g = jnp.roll(g, (-shift[0], -shift[1]), axis=(1, 2))
        g = g / (jnp.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-8)
        return jnp.clip(x + step_size * g, 0.0, 1.0), v

    return jax.lax.scan(body, x, jax.random.split(key, steps))


def octave_sizes(h: int, w: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes of the octaves, coarse to fine (the last is ``(h, w)``)."""
    return [(max(1, round(h / scale**i)), max(1, round(w / scale**i))) for i in reversed(range(octaves))]


def deepdream(
    model: Model,
    images: ArrayLike,
    objective: Objective | str,
    *,
    key: jax.Array,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    jitter: int = 16,
    progress: bool = True,
) -> DreamResult:
    """DeepDream ``images`` ``(B, H, W, C)`` in [0, 1]: gradient ascent on ``objective`` (a layer name means
    :func:`~jaxviz.featureviz.objectives.layer`, ``mean(layer**2)``) over ``octaves`` scales.

    Each octave starts from the photo at that scale plus the detail dreamed so far (upsampled), takes
    ``steps`` steps of ``step_size`` times the gradient divided by its mean absolute value, each through a
    random roll of up to ``jitter`` pixels, and keeps pixels in [0, 1]. One compiled scan per octave size.
    """
    if isinstance(objective, str):
        objective = layer(objective)
    x = model.check_input(images)
    if not np.all(np.isfinite(np.asarray(x))):
        raise JaxvizError("the image contains NaN or infinite values.")
    for name, v in (("octaves", octaves), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise JaxvizError(f"{name} must be a positive integer; got {v!r}.")
    if not (octave_scale > 1 and step_size > 0) or isinstance(jitter, bool) or not isinstance(jitter, (int, np.integer)) or jitter < 0:
        raise JaxvizError(f"need octave_scale > 1, step_size > 0 and an integer jitter >= 0; got {octave_scale}, {step_size}, {jitter!r}.")
    if not model.resizable:
        raise ShapeError(f"{model.name} takes only {model.input_shape[0]}x{model.input_shape[1]} images; DeepDream's octaves need a resizable (fully convolutional) model.")
    b, h, w, c = x.shape
    sizes = octave_sizes(h, w, octaves, octave_scale)
    smallest = sizes[0]
    if jitter >= min(smallest):
        raise ShapeError(f"jitter {jitter} px is not smaller than the coarsest octave ({smallest[0]}x{smallest[1]}); use fewer octaves or a smaller jitter.")
    try:
        objective.check(model, (b, *smallest, c))
        shapes = model.layer_shapes(jax.ShapeDtypeStruct((b, *smallest, c), jnp.float32)) if objective.layers else {}
    except (TypeError, ValueError) as e:
        if isinstance(e, JaxvizError):
            raise
        raise ShapeError(f"the coarsest octave ({smallest[0]}x{smallest[1]}) is too small for {model.name}; use fewer octaves or a larger image.") from e
    if any(0 in s for s in shapes.values()):
        raise ShapeError(f"the coarsest octave ({smallest[0]}x{smallest[1]}) is too small for {model.name}; use fewer octaves or a larger image.")
    detail = jnp.zeros((b, *smallest, c), jnp.float32)
    out, trajectory = [], []
    keys = jax.random.split(key, octaves)
    for hw, k in tqdm(list(zip(sizes, keys)), desc="dream", unit="octave", disable=not progress, leave=False):
        base = _resize(x, hw)
        dreamed, values = _octave(model, objective, jnp.clip(base + _resize(detail, hw), 0, 1), k, jnp.float32(step_size),
                                  steps=int(steps), jitter=int(jitter))
        detail = dreamed - base
        out.append(np.asarray(dreamed))
        trajectory.append(np.asarray(values))
    traj = np.stack(trajectory)
    if not np.isfinite(traj).all():
        o, s = np.argwhere(~np.isfinite(traj).all(axis=2))[0]
        raise JaxvizError(f"the DeepDream objective became NaN at octave {o}, step {s}; lower step_size.")
    return DreamResult(out[-1], tuple(out), traj)
