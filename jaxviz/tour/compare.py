"""Run several attribution methods on one batch, score them, and lay them out side by side.

This is what ``jaxviz saliency`` and the tour's attribution section show, built on the primitives of
:mod:`jaxviz.attribution`: every method reduced to one ``(B, H, W)`` importance map, deletion/insertion
AUC per method and image (Petsiuk et al. 2018), and the cascading-randomisation sanity check
(Adebayo et al. 2018).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.attribution import metrics
from jaxviz.attribution.cam import grad_cam, grad_cam_plus_plus, guided_grad_cam, score_cam
from jaxviz.attribution.fullgrad import fullgrad
from jaxviz.attribution.gradients import blur_integrated_gradients, gradient, gradient_x_input, integrated_gradients, smoothgrad
from jaxviz.attribution.modified_backprop import deconvnet, guided_backprop
from jaxviz.attribution.occlusion import occlusion
from jaxviz.data import to_rgb
from jaxviz.errors import JaxvizError
from jaxviz.models.contract import Model
from jaxviz.viz import image_grid, overlay


class Settings(NamedTuple):
    """Method settings shared by the command line and the tour (defaults: Captum's common ones)."""

    layer: str | None = None  # CAM layer; None: the last spatial layer (see default_cam_layer)
    samples: int = 25  # SmoothGrad noise draws
    noise_level: float = 0.15
    steps: int = 50  # IG path steps
    window: int = 32  # occlusion
    stride: int = 8
    metric_steps: int = 32  # deletion / insertion curve points
    chunk_size: int = 16


QUICK = Settings(samples=8, steps=16, window=48, stride=16, metric_steps=16)


def settings_for(model: Model, quick: bool = False) -> Settings:
    """Default or quick settings, with occlusion windows in proportion to small (<= 64 px) inputs."""
    settings = QUICK if quick else Settings()
    if model.input_shape is not None and model.input_shape[0] <= 64:
        settings = settings._replace(window=8, stride=4 if quick else 2)
    return settings


def default_cam_layer(model: Model) -> str:
    """The last layer with a spatial (B, h, w, k) activation whose k is not the class count."""
    shapes = model.layer_shapes()
    n = model.num_classes
    spatial = [name for name, s in shapes.items() if len(s) == 4 and s[-1] != n]
    if not spatial:
        raise JaxvizError(f"{model.name} has no spatial layer for Grad-CAM; layers: {', '.join(model.layers)}")
    return spatial[-1]


def _occlusion_drop(model, x, t, key, s):
    maps = occlusion(model, x, t, window=s.window, stride=s.stride, chunk_size=s.chunk_size)
    return maps.reference[:, None, None] - maps.prob  # how much the target probability drops


# Each entry maps (model, x, targets, key, settings) -> (B, H, W) importance, larger = more important.
METHODS: dict[str, Callable] = {
    "occlusion": _occlusion_drop,
    "gradient": lambda m, x, t, k, s: gradient(m, x, t, reduce="max_abs"),
    "gradient_x_input": lambda m, x, t, k, s: gradient_x_input(m, x, t, reduce="sum_abs"),
    "smoothgrad": lambda m, x, t, k, s: jnp.abs(smoothgrad(gradient, m, x, t, key=k, samples=s.samples, noise_level=s.noise_level, chunk_size=s.chunk_size)).max(-1),
    "guided_backprop": lambda m, x, t, k, s: guided_backprop(m, x, t, reduce="max_abs"),
    "deconvnet": lambda m, x, t, k, s: deconvnet(m, x, t, reduce="max_abs"),
    "grad_cam": lambda m, x, t, k, s: grad_cam(m, x, t, layer=s.layer),
    "grad_cam_plus_plus": lambda m, x, t, k, s: grad_cam_plus_plus(m, x, t, layer=s.layer),
    "score_cam": lambda m, x, t, k, s: score_cam(m, x, t, layer=s.layer, chunk_size=s.chunk_size),
    "guided_grad_cam": lambda m, x, t, k, s: jnp.abs(guided_grad_cam(m, x, t, layer=s.layer)).max(-1),
    "integrated_gradients": lambda m, x, t, k, s: jnp.abs(integrated_gradients(m, x, t, steps=s.steps, chunk_size=s.chunk_size)).sum(-1),
    "blur_integrated_gradients": lambda m, x, t, k, s: jnp.abs(blur_integrated_gradients(m, x, t, steps=s.steps, chunk_size=s.chunk_size)).sum(-1),
    "fullgrad": lambda m, x, t, k, s: fullgrad(m, x, t),
}
# The seed figure's columns, in its order.
DEFAULT_METHODS = ("occlusion", "gradient", "smoothgrad", "guided_backprop", "grad_cam", "integrated_gradients", "fullgrad")
# Methods the randomisation check runs by default (cheap, and the three of Adebayo et al.'s finding).
SANITY_METHODS = ("gradient", "guided_backprop", "grad_cam")


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise JaxvizError(f"unknown attribution method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return tuple(methods)


def attribution_maps(
    model: Model, x, targets, methods: Sequence[str] = DEFAULT_METHODS, *, key: jax.Array, settings: Settings = Settings()
) -> dict[str, np.ndarray]:
    """``{method: (B, H, W) importance}`` for a batch (each method compiles once per shapes and settings)."""
    methods = check_methods(methods)
    if settings.layer is None:
        settings = settings._replace(layer=default_cam_layer(model))
    x = model.check_input(x)
    t = model.check_targets(targets, x.shape[0])
    keys = jax.random.split(key, len(methods))
    return {name: np.asarray(METHODS[name](model, x, t, k, settings)) for name, k in zip(methods, keys)}


class Scores(NamedTuple):
    deletion_auc: dict[str, list[float]]  # method -> per image (lower is better)
    insertion_auc: dict[str, list[float]]  # method -> per image (higher is better)


def score_maps(model: Model, x, targets, maps: dict[str, np.ndarray], *, steps: int = 32, chunk_size: int = 16) -> Scores:
    """Deletion and insertion AUC of every map (probability of the target class)."""
    d = {name: np.asarray(metrics.deletion(model, x, targets, m, steps=steps, chunk_size=chunk_size).auc).tolist() for name, m in maps.items()}
    i = {name: np.asarray(metrics.insertion(model, x, targets, m, steps=steps, chunk_size=chunk_size).auc).tolist() for name, m in maps.items()}
    return Scores(d, i)


def sanity_check(model: Model, x, targets, methods: Sequence[str] = SANITY_METHODS, *, key: jax.Array, settings: Settings = Settings()) -> dict[str, dict]:
    """Cascading randomisation: ``{method: {"layers": [...], "spearman": [per layer, mean over images]}}``."""
    if settings.layer is None:
        settings = settings._replace(layer=default_cam_layer(model))
    out = {}
    for name, k in zip(check_methods(methods), jax.random.split(key, len(methods))):
        fn = METHODS[name]
        check = metrics.model_randomisation(lambda m, xx, t: fn(m, xx, t, k, settings), model, x, targets, key=k)
        out[name] = {"layers": list(check.layers), "spearman": [round(float(r), 4) for r in np.asarray(check.spearman).mean(axis=1)]}
    return out


def panel(images, maps: dict[str, np.ndarray], *, labels: Sequence[str] | None = None, scale: int = 1) -> np.ndarray:
    """One row per image: the image, then each method's map over it (the seed's side-by-side figure)."""
    images = to_rgb(images)
    tiles, names = [], []
    for b, img in enumerate(images):
        tiles.append(img)
        names.append(labels[b] if labels else "image")
        for name, m in maps.items():
            tiles.append(overlay(img, m[b], alpha=0.6))
            names.append(name.replace("_", " ")[:16])
    return image_grid(np.stack(tiles), ncols=1 + len(maps), labels=names, scale=scale)
