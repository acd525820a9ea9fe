"""Style transfer (Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
CVPR 2016), with the colour controls of Gatys et al., "Preserving Color in Neural Artistic Style
Transfer" (2016) and coarse-to-fine optimisation (Gatys et al., "Controlling Perceptual Factors in
Neural Style Transfer", CVPR 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.data import resize
from jaxviz.errors import JaxvizError
from jaxviz.models.contract import Model
from jaxviz.style import _common
from jaxviz.style.features import (
    check_image_size,
    content_layer,
    extractor,
    style_layers,
)
from jaxviz.style.optimize import Objective, optimize_image
from jaxviz.style.stats import style_statistic

INITS = ("content", "style", "noise")
COLOR_MODES = (None, "luminance", "histogram")
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)


class TransferResult(NamedTuple):
    """Result of :func:`style_transfer`.

    Attributes:
      image: ``(B, H, W, 3)`` stylised images in [0, 1] (one per content image / weight pair).
      style_loss: ``(B,)`` the (normalised) style loss of ``image``.
      content_loss: ``(B,)`` the (normalised) content loss of ``image``.
      losses: ``(steps,)`` summed objective before each step of the last scale.
      steps, status, message: as in :class:`~jaxviz.style.OptimizeResult` (last scale).
    """

    image: jax.Array
    style_loss: jax.Array
    content_loss: jax.Array
    losses: np.ndarray
    steps: int
    status: str
    message: str


def match_color(source: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """Colour histogram matching by a linear map: ``source``'s pixels get ``reference``'s colour mean and
    covariance (Gatys et al. 2016, "Preserving Color", the Cholesky/eigen variant with symmetric square roots).

    Args:
      source: ``(H, W, 3)`` the image whose colours change (the style image).
      reference: ``(H', W', 3)`` the image whose colour statistics are imposed (the content image).
    """
    s, r = np.asarray(source, np.float64).reshape(-1, 3), np.asarray(reference, np.float64).reshape(-1, 3)
    mu_s, mu_r = s.mean(0), r.mean(0)
    cov_s, cov_r = np.cov(s, rowvar=False) + 1e-5 * np.eye(3), np.cov(r, rowvar=False) + 1e-5 * np.eye(3)

    def sqrt(c, power):
        w, v = np.linalg.eigh(c)
        return (v * np.maximum(w, 1e-10) ** power) @ v.T

    a = sqrt(cov_r, 0.5) @ sqrt(cov_s, -0.5)
    out = (s - mu_s) @ a.T + mu_r
    return np.clip(out, 0, 1).reshape(np.shape(source)).astype(np.float32)


def rgb_to_yiq(x: ArrayLike) -> np.ndarray:
    """RGB -> YIQ (NTSC); Y is the luminance."""
    return np.asarray(x, np.float32) @ _YIQ.T


def yiq_to_rgb(x: ArrayLike) -> np.ndarray:
    """YIQ -> RGB."""
    return np.asarray(x, np.float32) @ np.linalg.inv(_YIQ).T.astype(np.float32)


def _luminance(x: np.ndarray) -> np.ndarray:
    return np.repeat(rgb_to_yiq(x)[..., :1], 3, axis=-1)


def style_transfer(model: Model, content: ArrayLike, style: ArrayLike, *, key: jax.Array | None = None,
                   content_weight=1.0, style_weight=1.0, tv_weight=0.0, content_layer_name: str | None = None,
                   style_layer_names: Sequence[str] | None = None, layer_weights=None, statistic: str = "gram",
                   pooling: str = "max", init: str = "content", method: str = "lbfgs", steps: int = 100,
                   learning_rate: float = 0.02, preserve_color: str | None = None,
                   scales: Sequence[int] | None = None, normalize: bool = True) -> TransferResult:
    """Render ``content`` in the style of ``style`` (Gatys et al. 2016).

    Minimises ``alpha * L_content + beta * L_style + tv * TV`` over the pixels. ``alpha`` and ``beta``
    may be arrays, one pair per image of the batch, so an alpha/beta sweep is one batched run.

    Args:
      model: any :class:`~jaxviz.models.Model`; default layers known for SqueezeNet and VGG.
      content: ``(H, W, 3)`` or ``(B, H, W, 3)`` content images in [0, 1].
      style: ``(H', W', 3)`` style image (any size: statistics are size-normalised).
      key: random key, needed for ``init="noise"``.
      content_weight, style_weight: ``alpha`` and ``beta`` (floats or ``(B,)``); with ``normalize`` both
        losses are relative squared errors, so ``alpha/beta`` does not depend on the network's scale.
      tv_weight: total-variation weight (float or ``(B,)``).
      content_layer_name: default :func:`~jaxviz.style.content_layer`.
      style_layer_names: default :func:`~jaxviz.style.style_layers`; ``layer_weights`` as in
        :func:`~jaxviz.style.synthesize_texture` (``(B, L)`` rows give the layer-subset grid).
      statistic, pooling, method, steps, learning_rate, normalize: see :func:`~jaxviz.style.synthesize_texture`.
      init: start from the ``"content"`` image, the ``"style"`` image (resized) or ``"noise"``.
      preserve_color: ``None``; ``"luminance"`` (transfer on luminance only, then the content's
        chrominance) or ``"histogram"`` (the style image's colours matched to the content's first).
      scales: coarse-to-fine side lengths, e.g. ``(128, 256)``: the content is resized to each, and each
        result, upsampled, starts the next scale; ``steps`` per scale. Default: the content's own size.

    Returns:
      A :class:`TransferResult`.
    """
    if init not in INITS:
        raise JaxvizError(f"unknown init {init!r}; choose one of {', '.join(INITS)}.")
    if preserve_color not in COLOR_MODES:
        raise JaxvizError(f"unknown preserve_color {preserve_color!r}; choose one of None, 'luminance', 'histogram'.")
    c = _common.as_batch(content, "content image")
    s = _common.as_batch(style, "style image")
    if s.shape[0] != 1:
        raise JaxvizError(f"give one style image; got a batch of {s.shape[0]}.")
    _common.same_channels(c, s, "content image", "style image")
    s, c_in = s[0], c
    if preserve_color == "histogram":
        s = match_color(s, c[0])
    elif preserve_color == "luminance":
        yc = rgb_to_yiq(c)
        lum_c, lum_s = yc[..., :1], rgb_to_yiq(s)[..., :1]  # style luminance matched to the content's mean/std
        lum_s = (lum_s - lum_s.mean()) / (lum_s.std() + 1e-6) * lum_c.std() + lum_c.mean()
        c_in, s = np.clip(_luminance(c), 0, 1), np.clip(np.repeat(lum_s, 3, axis=-1), 0, 1)
    b = c.shape[0]
    content_name = content_layer(model) if content_layer_name is None else content_layer_name
    names = style_layers(model) if style_layer_names is None else style_layer_names
    ext_style = extractor(model, names, pooling=pooling)
    ext = extractor(model, tuple(ext_style.layers) + ((content_name,) if content_name not in ext_style.layers else ()), pooling=pooling)
    check_image_size(ext, s[None].shape, "style image")
    objective = Objective(ext_style.layers, statistic=statistic, content_layer=content_name, normalize=normalize)
    targets = _style_targets(ext_style, jnp.asarray(s[None]), statistic)
    args = {"style": targets, "layer_weights": _common.layer_weights(layer_weights, ext_style.layers, b),
            "alpha": _common.per_image(content_weight, b, "content_weight"),
            "beta": _common.per_image(style_weight, b, "style_weight"),
            "tv_weight": _common.per_image(tv_weight, b, "tv_weight")}
    sizes = [None] if scales is None else [(int(v), int(v)) if np.ndim(v) == 0 else tuple(v) for v in scales]
    x = None
    for i, size in enumerate(sizes):
        ci = c_in if size is None else resize(c_in, size)
        check_image_size(ext, ci.shape, "content image")
        args["content"] = _content_target(ext, jnp.asarray(ci), content_name)
        if x is not None:
            x0 = resize(np.asarray(x), ci.shape[1:3], crop=None)
        elif init == "content":
            x0 = ci
        elif init == "style":
            x0 = np.broadcast_to(resize(s, ci.shape[1:3]), ci.shape)
        else:
            x0 = _common.noise(key if i == 0 or key is None else jax.random.fold_in(key, i), ci.shape)
        res = optimize_image(objective, ext, jnp.asarray(x0), args, method=method, steps=steps, learning_rate=learning_rate)
        x = res.image
        if res.status != "ok":
            break
    terms = _terms(objective, ext, x, args)
    image = x
    if preserve_color == "luminance":
        yiq = rgb_to_yiq(c if sizes[-1] is None else resize(c, x.shape[1:3]))
        yiq[..., :1] = rgb_to_yiq(np.asarray(x))[..., :1]
        image = jnp.asarray(np.clip(yiq_to_rgb(yiq), 0, 1))
    return TransferResult(image, terms["style"], terms["content"], res.losses, res.steps, res.status, res.message)


_content_target = jax.jit(lambda ext, x, name: ext(x)[name], static_argnames="name")
_style_targets = jax.jit(lambda ext, x, statistic: {n: style_statistic(a, statistic) for n, a in ext(x).items()},
                         static_argnames="statistic")
_terms = jax.jit(lambda objective, ext, x, args: objective.terms(ext(x), x, args), static_argnames="objective")


CAT_CLASSES = (281, 282, 283, 284, 285)  # ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat
