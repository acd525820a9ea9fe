"""Class images (Simonyan et al. 2014) and how well they hold up: probability as saved, and under small
shifts and rescalings.

References:
  Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image Classification
  Models and Saliency Maps", 2014.
  Nguyen, Yosinski & Clune, "Deep Neural Networks are Easily Fooled", 2015 (high-confidence images
  that are not robust).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError
from jaxviz.featureviz.objectives import class_logit
from jaxviz.featureviz.param import image_param, pixel_param
from jaxviz.featureviz.regularisers import Regularisers
from jaxviz.featureviz.render import RenderResult, render
from jaxviz.featureviz.transforms import NONE, STANDARD, RandomShiftScale
from jaxviz.models.contract import Model

# Lucid's robust recipe, and the unregularised pixel baseline of Simonyan et al. (2014).
SETTINGS = ("robust", "pixels")
EVAL_TRANSFORM = RandomShiftScale(8.0, (0.9, 1.1))


class ClassImages(NamedTuple):
    """Class images of one setting with their scores.

    Attributes:
      setting: ``"robust"`` (transforms + Fourier + decorrelation) or ``"pixels"`` (no regularisation).
      classes: ``(B,)`` target classes.
      images: ``(B, H, W, C)`` in [0, 1].
      prob: ``(B,)`` target probability of the 8-bit images at the model's input size.
      robust_prob: ``(B,)`` its mean over random shifts (<= 8 px) and rescalings (0.9-1.1).
      render: the :class:`RenderResult`.
    """

    setting: str
    classes: np.ndarray
    images: np.ndarray
    prob: np.ndarray
    robust_prob: np.ndarray
    render: RenderResult


def quantise(images: ArrayLike) -> np.ndarray:
    """Images as they come back from an 8-bit PNG."""
    return np.round(np.clip(np.asarray(images, np.float32), 0, 1) * 255).astype(np.float32) / 255


def _at_input_size(model: Model, x: jax.Array) -> jax.Array:
    if model.input_shape is None or tuple(x.shape[1:3]) == tuple(model.input_shape[:2]):
        return x
    return jax.image.resize(x, (x.shape[0], *model.input_shape[:2], x.shape[3]), method="linear")


@jax.jit
def _probability(model, x, t):
    p = jax.nn.softmax(model(_at_input_size(model, x)), axis=-1)
    return jnp.take_along_axis(p, t[:, None], axis=1)[:, 0]


@functools.partial(jax.jit, static_argnames=("samples", "transform"))
def _robust_probability(model, x, t, key, samples, transform):
    def one(k):
        return _probability(model, transform(k, _at_input_size(model, x)), t)

    return jax.lax.map(one, jax.random.split(key, samples)).mean(axis=0)


def probability(model: Model, images: ArrayLike, classes: ArrayLike) -> np.ndarray:
    """Target-class probability of ``images`` resized to the model's input size, ``(B,)``."""
    x = model.check_input(images)
    return np.asarray(_probability(model, x, model.check_targets(classes, x.shape[0])))


def robust_probability(model: Model, images: ArrayLike, classes: ArrayLike, *, key: jax.Array, samples: int = 16,
                       transform: RandomShiftScale = EVAL_TRANSFORM) -> np.ndarray:
    """Mean target probability over ``samples`` random shifts and rescalings (``transform``) at input size, ``(B,)``."""
    x = model.check_input(images)
    return np.asarray(_robust_probability(model, x, model.check_targets(classes, x.shape[0]), key, int(samples), transform))


def class_images(model: Model, classes, *, setting: str = "robust", size: int = 128, steps: int = 256, key: jax.Array,
                 samples: int = 16, progress: bool = True, learning_rate: float | None = None) -> ClassImages:
    """Render one image per class in ``classes`` as one batch, maximising the class logit, and score them.

    ``setting="robust"``: Lucid's transforms, Fourier + decorrelated parameterisation. ``"pixels"``: raw pixels,
    no transforms, no regularisers (Simonyan et al. without their L2 term): high probability as rendered,
    lost under small shifts (an adversarial pattern rather than an object).
    """
    from jaxviz.featureviz.render import adam

    if setting not in SETTINGS:
        raise JaxvizError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}.")
    classes = np.atleast_1d(np.asarray(classes))
    c = model.input_shape[-1] if model.input_shape else 3
    k_render, k_eval = jax.random.split(key)
    if setting == "robust":
        param, transforms = image_param(size, len(classes), c), STANDARD
    else:
        param, transforms = pixel_param(size, len(classes), c), NONE
    result = render(model, class_logit(classes), param, key=k_render, steps=steps, transforms=transforms,
                    regularisers=Regularisers(), optimizer=adam(learning_rate or 0.05), progress=progress)
    images = quantise(result.images)
    return ClassImages(setting, classes, images, probability(model, images, classes),
                       robust_probability(model, images, classes, key=k_eval, samples=samples), result)
