"""Occlusion sensitivity (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
ECCV 2014, Fig. 7): slide a grey square over the image and watch the classifier."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.attribution import _common as C
from jaxviz.errors import JaxvizError, ShapeError


class OcclusionMaps(NamedTuple):
    """The three maps of Zeiler & Fergus Fig. 7, per pixel ``(B, H, W)`` and per window position ``(B, nh, nw)``.

    Per-pixel values average over the windows covering the pixel (Captum's convention; pixels no
    window covers, e.g. with a stride larger than the window, keep the unoccluded value); ``label`` takes
    the window whose centre is nearest.
    """

    prob: jax.Array  # target-class score with the pixel occluded
    label: jax.Array  # most probable label with the pixel occluded (int32)
    activation: jax.Array | None  # total activation of (layer, channel), or None
    prob_grid: jax.Array
    label_grid: jax.Array
    activation_grid: jax.Array | None
    reference: jax.Array  # unoccluded target score (B,)


def _pair(name, v):
    v = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(v) != 2:
        raise JaxvizError(f"{name} must be an int or a pair (h, w); got {v!r}.")
    return tuple(C.check_positive(name, int(u)) for u in v)


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Top-left offsets of the windows along one axis: every ``stride`` pixels until the image is covered.

    When ``stride`` does not divide ``size - window``, the last window is cropped at the far border
    (Captum's convention), so every pixel is occluded by at least one window.
    """
    return np.arange(-(-(size - window) // stride) + 1) * stride


@C.compiled
def occlusion(
    model_or_fn,
    x: ArrayLike,
    target: ArrayLike,
    *,
    window: int | tuple[int, int] = 16,
    stride: int | tuple[int, int] = 8,
    fill: float | ArrayLike = 0.5,
    output: str = "prob",
    layer: str | None = None,
    channel: int | None = None,
    chunk_size: int | str | None = "auto",
) -> OcclusionMaps:
    """Occlusion maps for a batch; window positions evaluated ``chunk_size`` at a time.

    Args:
      window, stride: square side (or ``(h, w)``) and step in pixels.
      fill: occluder value (0.5 = grey in [0, 1] pixels), a scalar or per-channel ``(C,)``.
      output: ``"prob"`` (softmax probability) or ``"logit"`` of the target.
      layer, channel: if given, also map the total activation of that feature map (needs a Model).
      chunk_size: window positions per call, one batch of ``chunk_size`` x batch images (the memory bound);
        ``"auto"``: about one 16-image batch per call on CPU, 32 windows on accelerators.
    """
    C.check_choice("output", output, ("prob", "logit"))
    f, x, t = C.prepare(model_or_fn, x, target)
    b, hgt, wid, ch = x.shape
    wh, ww = _pair("window", window)
    sh, sw = _pair("stride", stride)
    if wh > hgt or ww > wid:
        raise ShapeError(f"occlusion window {wh}x{ww} is larger than the {hgt}x{wid} image.")
    fill = jnp.broadcast_to(jnp.asarray(fill, jnp.float32), (ch,))
    if (layer is None) != (channel is None):
        raise JaxvizError("give both layer= and channel= for the activation map, or neither.")
    if layer is not None:
        model = C.require_model(model_or_fn, "occlusion with layer=")
        layer = C.check_layer(model, layer)
        shape = model.layer_shapes(x)[layer]
        if not 0 <= channel < shape[-1]:
            raise JaxvizError(f"channel {channel} out of range for layer {layer!r} with {shape[-1]} channels.")

    def evaluate(xx, t):
        if layer is None:
            logits, act = f(xx), None
        else:
            logits, acts = model.probe(xx)
            a = acts[layer][..., channel]
            act = a.reshape(a.shape[0], -1).sum(axis=1)
        score = jax.nn.softmax(logits) if output == "prob" else logits
        return C.select(score, t), jnp.argmax(logits, axis=1).astype(jnp.int32), act

    rows, cols = window_starts(hgt, wh, sh), window_starts(wid, ww, sw)
    r0, c0 = np.meshgrid(rows, cols, indexing="ij")
    starts = jnp.asarray(np.stack([r0.ravel(), c0.ravel()], axis=1), jnp.int32)
    ii = jnp.arange(hgt)[:, None]
    jj = jnp.arange(wid)[None, :]

    def occluded(rc):
        m = (ii >= rc[0]) & (ii < rc[0] + wh) & (jj >= rc[1]) & (jj < rc[1] + ww)
        return jnp.where(m[None, :, :, None], fill.reshape(1, 1, 1, ch), x)

    def windows(rcs):  # (c, 2) window starts -> (B, c) scores, labels, activations
        return C.unfold(evaluate(*C.fold(jax.vmap(occluded)(rcs), t)), len(rcs))

    p, lab, act = C.chunked_map(windows, starts, C.auto_chunk(chunk_size, b, len(starts), 32))  # (B, n_windows)
    ref = evaluate(x, t)
    nh, nw = len(rows), len(cols)

    def grid(v):
        return None if v is None else v.reshape(b, nh, nw)

    p_g, lab_g, act_g = grid(p), grid(lab), grid(act)
    cov_h = jnp.asarray((np.arange(hgt)[None, :] >= rows[:, None]) & (np.arange(hgt)[None, :] < rows[:, None] + wh), jnp.float32)
    cov_w = jnp.asarray((np.arange(wid)[None, :] >= cols[:, None]) & (np.arange(wid)[None, :] < cols[:, None] + ww), jnp.float32)
    count = jnp.einsum("ph,qw->hw", cov_h, cov_w)

    def per_pixel(g, r):
        if g is None:
            return None
        s = jnp.einsum("bpq,ph,qw->bhw", g, cov_h, cov_w)
        return jnp.where(count[None] > 0, s / jnp.maximum(count[None], 1.0), r[:, None, None])

    near_r = np.clip(np.rint((np.arange(hgt) - (wh - 1) / 2) / sh), 0, nh - 1).astype(np.int32)
    near_c = np.clip(np.rint((np.arange(wid) - (ww - 1) / 2) / sw), 0, nw - 1).astype(np.int32)
    label = lab_g[:, near_r][:, :, near_c]
    return OcclusionMaps(per_pixel(p_g, ref[0]), label, per_pixel(act_g, ref[2]) if act_g is not None else None, p_g, lab_g, act_g, ref[0])
