"""The render loop: maximise an objective over an image parameterisation with optax, one compiled step.

References:
  Olah, Mordvintsev & Schubert, "Feature Visualization", Distill, 2017 (Lucid's ``render_vis``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from jaxviz.attribution import replace_relu_grad
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.featureviz.objectives import Features, Objective
from jaxviz.featureviz.param import Param, image_param
from jaxviz.featureviz.regularisers import Regularisers, penalty
from jaxviz.featureviz.transforms import STANDARD, Compose
from jaxviz.models.contract import Model

_CHECK_EVERY = 32  # steps between NaN checks and progress-bar updates of the objective (each one syncs)
REDIRECT_STEPS = 32  # steps with the redirected ReLU gradient; a revived unit's plain gradient takes over after


class RenderResult(NamedTuple):
    """What :func:`render` returns.

    Attributes:
      images: ``(B, H, W, C)`` in [0, 1], the final images.
      objective: ``(steps, B)`` the objective of each image at each step (on its transformed copy).
      penalty: ``(steps, B)`` the weighted regulariser penalty at each step.
      snapshots: ``{step: (B, H, W, C) images}`` after each step listed in ``thresholds``.
      params: the final parameters (continue with ``render(..., init=result.params)``).
    """

    images: np.ndarray
    objective: np.ndarray
    penalty: np.ndarray
    snapshots: dict[int, np.ndarray]
    params: jax.Array


def features(model: Model, objective: Objective, x: jax.Array) -> Features:
    """The activations and logits ``objective`` needs for images ``x``, in one place for every objective."""
    if objective.needs_logits:  # one full pass gives the logits and every layer a mixed objective needs
        logits, acts = model.probe(x)
        return Features(x, {n: acts[n] for n in objective.layers}, logits)
    return Features(x, model.activations(x, objective.layers) if objective.layers else {}, None)


def _fit_model(model: Model, x: jax.Array) -> jax.Array:
    """Resize a transformed batch to a fixed-size model's input (resizable models take it as it is)."""
    if model.resizable or model.input_shape is None or tuple(x.shape[1:3]) == tuple(model.input_shape[:2]):
        return x
    return jax.image.resize(x, (x.shape[0], *model.input_shape[:2], x.shape[3]), method="linear")


@functools.cache
def adam(learning_rate: float = 0.05) -> optax.GradientTransformation:
    """Adam at ``learning_rate`` (cached, so renders with the same optimiser share one compiled step)."""
    return optax.adam(learning_rate)


@functools.partial(jax.jit, static_argnames=("param", "transforms", "regularisers", "optimizer", "relu_gradient"))
def _step(model, objective, params, opt_state, key, step, *, param, transforms, regularisers, optimizer, relu_gradient):
    feats = functools.partial(features, model, objective)
    if relu_gradient != "gradient":
        feats = replace_relu_grad(feats, relu_gradient)

    def loss(p):
        images = param(p)
        x = _fit_model(model, transforms(jax.random.fold_in(key, step), images))
        obj = objective(feats(x))
        pen = penalty(regularisers, images)
        return (pen - obj).sum(), (obj, pen)

    (_, (obj, pen)), grads = jax.value_and_grad(loss, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if regularisers.blur_every:
        due = (step + 1) % regularisers.blur_every == 0
        params = jax.lax.cond(due, lambda p: param.blur(p, regularisers.blur_sigma), lambda p: p, params)
    return params, opt_state, obj, pen


def check_setup(model: Model, objective: Objective, param: Param, transforms: Compose) -> None:
    """Raise a jaxviz error unless ``objective`` can be rendered on ``model`` through ``param`` and ``transforms``."""
    if not isinstance(model, Model):
        raise JaxvizError(f"feature visualisation needs a jaxviz Model; got {type(model).__name__}.")
    if not isinstance(objective, Objective):
        raise JaxvizError(f"objective must be a jaxviz.featureviz Objective (e.g. channel('fire6', 3)); got {type(objective).__name__}.")
    if not isinstance(param, Param):
        raise JaxvizError(f"param must be a Param (image_param / pixel_param) or an image size; got {type(param).__name__}.")
    b, h, w, c = param.shape
    if model.input_shape is not None and model.input_shape[-1] != c:
        raise ShapeError(f"{model.name} takes {model.input_shape[-1]}-channel images; the parameterisation makes {c}: pass channels={model.input_shape[-1]}.")
    th, tw = transforms.out_size(h, w)
    if not model.resizable and model.input_shape is not None:
        th, tw = model.input_shape[:2]
    objective.check(model, (b, th, tw, c))


def render(
    model: Model,
    objective: Objective,
    param: Param | int = 128,
    *,
    key: jax.Array,
    steps: int = 512,
    transforms: Compose = STANDARD,
    regularisers: Regularisers = Regularisers(),
    optimizer: optax.GradientTransformation | None = None,
    thresholds: Sequence[int] = (),
    init: ArrayLike | None = None,
    progress: bool = True,
    relu_gradient: str = "redirected",
) -> RenderResult:
    """Maximise ``objective`` minus the regularisers' penalty over the images of ``param``.

    Each step renders the images, applies ``transforms`` with a fresh key (``fold_in(key, step)``),
    evaluates ``objective`` on the model and takes one ``optimizer`` step (Adam at 0.05 by default, as
    Lucid); the step is one compiled program reused across calls with the same shapes and settings.
    Fixed-size models get the transformed images resized to their input size.

    Args:
      model: a jaxviz Model.
      objective: what to maximise (see :mod:`jaxviz.featureviz.objectives`).
      param: a :class:`Param`, or an int size for Lucid's default (Fourier, decorrelated, sigmoid) with
        the model's channel count.
      key: a ``jax.random.key`` for the initial parameters and the transforms.
      steps: optimisation steps.
      transforms: the robustness transforms (``transforms.NONE`` for none).
      regularisers: penalty weights and blur schedule.
      optimizer: an optax optimiser (default ``adam(0.05)``).
      thresholds: steps after which to keep the images in ``snapshots``.
      init: initial parameters (e.g. ``param.encode(photo)`` to start from a photo, or a previous result's ``params``).
      progress: show a progress bar.
      relu_gradient: ``"redirected"`` (default, as Lucid's ``render_vis``): for the first
        :data:`REDIRECT_STEPS` steps an image whose objective reaches only dead ReLUs still gets a
        gradient that pushes them up (see :func:`jaxviz.attribution.redirected_rule`), then the plain
        gradient (the redirected backward pass costs about a quarter more per step on a CPU);
        ``"gradient"``: the plain gradient throughout.

    Returns:
      A :class:`RenderResult`. Raises :class:`JaxvizError` naming the step if the objective becomes NaN.
    """
    if isinstance(param, (int, np.integer)) and not isinstance(param, bool):
        param = image_param(int(param), channels=model.input_shape[-1] if model.input_shape else 3)
    check_setup(model, objective, param, transforms)
    regularisers = regularisers.check()
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise JaxvizError(f"steps must be a positive integer; got {steps!r}.")
    thresholds = sorted({int(t) for t in thresholds})
    if thresholds and (thresholds[0] < 1 or thresholds[-1] > steps):
        raise JaxvizError(f"thresholds must lie in 1..{steps} (steps); got {thresholds}.")
    optimizer = optimizer or adam()
    k_init, k_steps = jax.random.split(key)
    if init is None:
        params = param.init(k_init)
    else:
        params = jnp.asarray(init, jnp.float32)
        if params.shape != param.params_shape:
            raise ShapeError(f"init parameters have shape {params.shape}; {param} needs {param.params_shape} (use param.encode(images)).")
    opt_state = optimizer.init(params)
    if relu_gradient not in ("redirected", "gradient"):
        raise JaxvizError(f"relu_gradient must be 'redirected' or 'gradient'; got {relu_gradient!r}.")
    settings = dict(param=param, transforms=transforms, regularisers=regularisers, optimizer=optimizer)
    objs, pens, snapshots = [], [], {}
    bar = tqdm(total=steps, desc="render", unit="step", disable=not progress, leave=False)
    try:
        for i in range(steps):
            rule = relu_gradient if i < REDIRECT_STEPS else "gradient"
            params, opt_state, obj, pen = _step(model, objective, params, opt_state, k_steps, jnp.int32(i), relu_gradient=rule, **settings)
            objs.append(obj)
            pens.append(pen)
            bar.update(1)
            if (i + 1) in thresholds:
                snapshots[i + 1] = np.asarray(param(params))
            if (i + 1) % _CHECK_EVERY == 0 or i + 1 == steps:
                recent = np.asarray(jnp.stack(objs[-_CHECK_EVERY:]))
                _check_finite(recent, i + 1 - len(recent))
                bar.set_postfix(objective=f"{recent[-1].mean():.4g}")
    finally:
        bar.close()
    return RenderResult(np.asarray(param(params)), np.asarray(jnp.stack(objs)), np.asarray(jnp.stack(pens)), snapshots, params)


def _check_finite(values: np.ndarray, first_step: int) -> None:
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        step = first_step + int(np.argmax(bad))
        raise JaxvizError(
            f"the objective became NaN or infinite at step {step}; lower the learning rate, add regularisers or check the model for NaN."
        )


@jax.jit
def _score(model, objective, x):
    return objective(features(model, objective, _fit_model(model, x)))


def score(model: Model, objective: Objective, images: ArrayLike) -> jax.Array:
    """The objective of ``images`` ``(B, H, W, C)`` as they are (no transforms), per image ``(B,)``.

    Compare a rendered image's score with the dataset's top examples of the same unit.
    """
    x = model.check_input(images)
    objective.check(model, x.shape if model.resizable or model.input_shape is None else (x.shape[0], *model.input_shape))
    return _score(model, objective, x)
