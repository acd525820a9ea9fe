"""Class activation maps at any named layer: Grad-CAM, Grad-CAM++, Score-CAM, Guided Grad-CAM.

Layer access goes through the model contract: the gradient with respect to a layer is the gradient
with respect to its zero delta in ``model.probe(x, deltas)``. A model split into ``features(x) -> A``
and ``head(A) -> logits`` becomes a Model with ``jaxviz.models.adapters.from_functions``.

References:
  Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
  Localization", ICCV 2017 (Grad-CAM, Guided Grad-CAM).
  Chattopadhay et al., "Grad-CAM++", WACV 2018.
  Wang et al., "Score-CAM: Score-Weighted Visual Explanations for CNNs", CVPRW 2020.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxviz.attribution import _common as C
from jaxviz.attribution.modified_backprop import guided_backprop
from jaxviz.errors import ShapeError


def layer_gradient(model, x: ArrayLike, target: ArrayLike, layer: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(activation, d target-logit / d activation, logits)`` at ``layer`` for a batch."""
    model = C.require_model(model, "a layer method")
    _, x, t = C.prepare(model, x, target)
    layer = C.check_layer(model, layer)
    deltas = model.zero_deltas(x, [layer])

    def score(d):
        logits, acts = model.probe(x, d)
        return C.select(logits, t).sum(), (acts[layer], logits)

    g, (a, logits) = jax.grad(score, has_aux=True)(deltas)
    return a, g[layer], logits


def _spatial(a, layer):
    if a.ndim != 4:
        raise ShapeError(f"CAMs need a convolutional layer (B, h, w, C); {layer!r} has shape {a.shape}.")


def _finish(cam, x_shape, relu, resize):
    if relu:
        cam = jax.nn.relu(cam)
    return C.resize_maps(cam, x_shape[1:3]) if resize else cam


@C.compiled
def grad_cam(model, x: ArrayLike, target: ArrayLike, *, layer: str, relu: bool = True, resize: bool = True) -> jax.Array:
    """Grad-CAM (Selvaraju et al. 2017): ``relu(sum_k mean_ij(dy/dA_k) A_k)``, bilinearly resized to the input.

    Returns ``(B, H, W)`` (``(B, h, w)`` with ``resize=False``); not normalised.
    """
    a, g, _ = layer_gradient(model, x, target, layer)
    _spatial(a, layer)
    w = g.mean(axis=(1, 2))
    return _finish(jnp.einsum("bhwk,bk->bhw", a, w), jnp.shape(x), relu, resize)


@C.compiled
def grad_cam_plus_plus(model, x: ArrayLike, target: ArrayLike, *, layer: str, resize: bool = True) -> jax.Array:
    """Grad-CAM++ (Chattopadhay et al. 2018) with the closed-form alphas of the exp-score derivation."""
    a, g, _ = layer_gradient(model, x, target, layer)
    _spatial(a, layer)
    g2, g3 = g * g, g * g * g
    denom = 2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3
    alpha = jnp.where(g != 0, g2 / jnp.where(denom != 0, denom, 1.0), 0.0)
    w = (alpha * jax.nn.relu(g)).sum(axis=(1, 2))
    return _finish(jnp.einsum("bhwk,bk->bhw", a, w), jnp.shape(x), True, resize)


@C.compiled
def score_cam(
    model, x: ArrayLike, target: ArrayLike, *, layer: str, chunk_size: int | str | None = "auto", resize: bool = True,
    subtract_baseline: bool = False,
) -> jax.Array:
    """Score-CAM (Wang et al. 2020): weight each feature map by the target probability of the input masked by it.

    Each channel's map is upsampled, min-max normalised to [0, 1] and multiplied into the input;
    the channels are evaluated ``chunk_size`` at a time (``"auto"``: about 16 images per call on CPU,
    16 channels on accelerators). Weights are the softmax probabilities of the
    target, as in the authors' and pytorch-grad-cam's code; ``subtract_baseline=True`` uses the paper's
    increase of confidence ``p(x * mask_k) - p(black image)`` instead.
    """
    model = C.require_model(model, "score_cam")
    _, x, t = C.prepare(model, x, target)
    layer = C.check_layer(model, layer)
    a = model.probe(x)[1][layer]
    _spatial(a, layer)
    up = jax.image.resize(a, (a.shape[0], *x.shape[1:3], a.shape[-1]), method="linear", antialias=False)
    lo = up.min(axis=(1, 2), keepdims=True)
    hi = up.max(axis=(1, 2), keepdims=True)
    masks = jnp.where(hi > lo, (up - lo) / jnp.where(hi > lo, hi - lo, 1.0), 0.0)  # (B, H, W, K)

    def masked_scores(ms):  # (c, B, H, W) masks -> (B, c) target probabilities
        xb, tb = C.fold(x[None] * ms[..., None], t)
        return C.unfold(C.select(jax.nn.softmax(model(xb)), tb), len(ms))

    scores = C.chunked_map(masked_scores, jnp.moveaxis(masks, -1, 0), C.auto_chunk(chunk_size, x.shape[0], masks.shape[-1], 16))  # (B, K)
    if subtract_baseline:
        scores = scores - C.select(jax.nn.softmax(model(jnp.zeros_like(x))), t)[:, None]
    cam = jnp.einsum("bhwk,bk->bhw", a, scores)
    return _finish(cam, x.shape, True, resize)


@C.compiled
def guided_grad_cam(model, x: ArrayLike, target: ArrayLike, *, layer: str) -> jax.Array:
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backprop times the upsampled Grad-CAM; ``(B, H, W, C)``."""
    return guided_backprop(model, x, target) * grad_cam(model, x, target, layer=layer)[..., None]
