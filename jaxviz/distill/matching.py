"""Dataset condensation by distribution matching (Zhao & Bilen, WACV 2023).

Instead of differentiating through training (Wang et al. 2018, :func:`jaxviz.distill.distill`),
distribution matching (DM) asks that the synthetic images of each class have the same mean embedding
as the real images of that class, under randomly initialised networks. Each iteration samples a fresh
network (``model.init`` with a key from the seed and the iteration), embeds a real minibatch of every
class and the synthetic images of that class with the layer before the classifier head, and takes a
step on the synthetic images down

    L = sum_c || mean_i f(A_c(x_real[c, i])) - mean_j f(A_c(x_syn[c, j])) ||^2

where ``A_c`` is a differentiable siamese augmentation (DSA, Zhao & Bilen, ICML 2021): the same random
scale, rotation, crop (translation) and flip for the real and the synthetic images of class ``c``.
No inner training loop, no second-order gradients: one forward pass of the real images and one
forward and backward pass of the synthetic ones per iteration, so it scales to many images per class.

The result is a :class:`~jaxviz.distill.DistillResult` with one step of ``images_per_class * classes``
images (class ``j % classes`` at position ``j``, the layout of :func:`~jaxviz.distill.initial_labels`)
and no learned step sizes (``lrs`` is empty): evaluate it with protocol (b),
:func:`~jaxviz.distill.train_fresh`; :func:`~jaxviz.distill.save_artifact` writes it like any other set.

References:
  Zhao, Bilen. "Dataset Condensation with Distribution Matching", WACV 2023 (arXiv:2110.04181).
  Zhao, Bilen. "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from jaxviz.data import Dataset
from jaxviz.distill.core import Distilled, DistillResult, class_counts, over_networks
from jaxviz.distill.evaluate import random_real
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models.contract import Model
from jaxviz.train import Checkpointer, cache_dir, run_id, run_loop
from jaxviz.viz import figure_to_array, image_grid

MATCH_INITS = ("real", "noise")
OPTIMIZERS = ("sgd", "adam")


class MatchConfig(NamedTuple):
    """The recipe of one distribution-matching run.

    Zhao & Bilen's setting is 20,000 iterations, 256 real images per class, one random ConvNet per
    iteration, SGD with learning rate 1 and momentum 0.5 on images normalised by the data's mean and
    std, DSA on, synthetic images started from random real ones. Here images stay in the model's
    pixel space ([0, 1]); SGD at ``lr`` in pixel space is SGD at ``lr / std**2`` in normalised space
    (about 8 ``lr`` for Fashion-MNIST).

    Attributes:
      images_per_class: synthetic images of each class (at least 1).
      iterations: optimisation steps on the images.
      real_per_class: real images of each class embedded per iteration.
      optimizer: ``"sgd"`` (with ``momentum``, the paper's) or ``"adam"``.
      lr: learning rate on the pixels.
      momentum: SGD momentum (the paper's 0.5).
      nets: random networks sampled per iteration; their losses are averaged (:func:`over_networks`). The paper
        uses one.
      augment: apply DSA (the same random scale, rotation, crop and flip to the real and synthetic
        images of a class) before embedding.
      layer: the embedding layer; ``None`` = the layer before the model's last (the features
        before the classifier head, ``block3`` of the ConvNet).
      init: ``"real"`` (random real images of each class, drawn like
        :func:`~jaxviz.distill.random_real` with the same ``seed``) or ``"noise"`` (Gaussian with the
        data's mean and std).
      seed: starting images, networks, augmentations and real minibatches all derive from it.
      checkpoint_seconds: wall time between orbax checkpoints (not part of the run's identity).
    """

    images_per_class: int = 10
    iterations: int = 20000
    real_per_class: int = 256
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.5
    nets: int = 1
    augment: bool = True
    layer: str | None = None
    init: str = "real"
    seed: int = 0
    checkpoint_seconds: float = 30.0


def check_match_config(config: MatchConfig) -> None:
    """Raise :class:`~jaxviz.errors.JaxvizError` for a config no run can use (before any data is loaded)."""
    for name in ("images_per_class", "iterations", "real_per_class", "nets"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise JaxvizError(f"{name} must be an integer of at least 1; got {value!r}.")
    if config.optimizer not in OPTIMIZERS:
        raise JaxvizError(f"unknown optimizer {config.optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
    if config.init not in MATCH_INITS:
        raise JaxvizError(f"unknown init {config.init!r}; use one of {', '.join(MATCH_INITS)}.")
    if not config.lr > 0:
        raise JaxvizError(f"lr must be positive; got {config.lr}.")
    if not 0.0 <= config.momentum < 1.0:
        raise JaxvizError(f"momentum must be in [0, 1); got {config.momentum}.")


def embedding_layer(model: Model, layer: str | None = None) -> str:
    """The layer whose activations embed images: ``layer`` (checked), or the one before the model's last."""
    if layer is not None:
        return model.check_layers([layer])[0]
    if len(model.layers) < 2:
        raise JaxvizError(f"{model.name} exposes {len(model.layers)} layer(s) ({', '.join(model.layers) or 'none'}); "
                          "distribution matching needs a feature layer before the head. Pass layer=... explicitly.")
    return model.layers[-2]


def embed(model: Model, params: Any, x: jax.Array, layer: str) -> jax.Array:
    """Flattened activations ``(B, D)`` of ``layer`` for images ``x`` under ``params`` (the pass stops there)."""
    h = model.probe(x, params=params, until=layer)[1][layer]
    return h.reshape(h.shape[0], -1)


def dm_loss(model: Model, params: Any, x_real: jax.Array, x_syn: jax.Array, layer: str) -> jax.Array:
    """Zhao & Bilen's loss: the sum over classes of the squared distance between mean embeddings.

    Args:
      params: one network's parameters.
      x_real: ``(classes, m, H, W, C)`` real images of each class.
      x_syn: ``(classes, n, H, W, C)`` synthetic images of each class.
      layer: the embedding layer.
    """
    k = x_real.shape[0]
    real = embed(model, params, x_real.reshape(-1, *x_real.shape[2:]), layer).reshape(k, x_real.shape[1], -1).mean(1)
    syn = embed(model, params, x_syn.reshape(-1, *x_syn.shape[2:]), layer).reshape(k, x_syn.shape[1], -1).mean(1)
    return jnp.sum((real - syn) ** 2)


def dsa_params(key: jax.Array, num: int) -> jax.Array:
    """``num`` random DSA transforms as ``(num, 2, 3)`` affine maps of normalised output to input coordinates.

    Each composes a scale per axis in ``[1/1.2, 1.2]``, a rotation in ``[-15, 15]`` degrees, a
    horizontal flip with probability 1/2 and a translation (crop) of up to 1/8 of the size per axis:
    the geometric transforms of DSA's ``crop_flip_scale_rotate`` strategy, composed into one map.
    """
    ks, kr, kf, kt = jax.random.split(key, 4)
    scale = jax.random.uniform(ks, (num, 2), minval=1 / 1.2, maxval=1.2)
    theta = jnp.deg2rad(jax.random.uniform(kr, (num,), minval=-15.0, maxval=15.0))
    flip = jnp.where(jax.random.bernoulli(kf, 0.5, (num,)), -1.0, 1.0)
    shift = jax.random.uniform(kt, (num, 2), minval=-0.25, maxval=0.25)  # 1/8 of the size = 0.25 in [-1, 1] units
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    rot = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)  # (num, 2, 2)
    lin = rot * scale[:, None, :] * jnp.stack([flip, jnp.ones_like(flip)], -1)[:, None, :]
    return jnp.concatenate([lin, shift[..., None]], -1)


def dsa_augment(x: jax.Array, affine: jax.Array) -> jax.Array:
    """Resample a batch ``(B, H, W, C)`` through one affine map ``(2, 3)`` (bilinear, zero outside).

    Output pixel centres in ``[-1, 1]`` coordinates ``(u, v)`` (column, row) read the input at
    ``affine @ (u, v, 1)``; the same map for every image of the batch (siamese). Differentiable in ``x``.
    """
    h, w = x.shape[1:3]
    v, u = jnp.meshgrid((2 * jnp.arange(h) + 1) / h - 1, (2 * jnp.arange(w) + 1) / w - 1, indexing="ij")
    src = jnp.einsum("ij,hwj->hwi", affine, jnp.stack([u, v, jnp.ones_like(u)], -1))
    cols, rows = ((src[..., 0] + 1) * w - 1) / 2, ((src[..., 1] + 1) * h - 1) / 2
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    fr, fc = rows - r0, cols - c0
    out = 0.0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            r, c = (r0 + dr).astype(jnp.int32), (c0 + dc).astype(jnp.int32)
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            px = x[:, jnp.clip(r, 0, h - 1), jnp.clip(c, 0, w - 1)]
            out = out + px * jnp.where(inside, wr * wc, 0.0)[None, :, :, None]
    return out.astype(x.dtype)


def by_class(x: jax.Array, num_classes: int) -> jax.Array:
    """Synthetic images ``(n, H, W, C)`` with class ``j % classes`` at ``j`` -> ``(classes, n // classes, H, W, C)``."""
    return jnp.swapaxes(x.reshape(-1, num_classes, *x.shape[1:]), 0, 1)


def make_match_step(model: Model, config: MatchConfig, optimizer: optax.GradientTransformation, num_classes: int,
                    layer: str):
    """``step((x_syn, opt_state), (x_real, i)) -> (new, {"loss"})`` for :func:`~jaxviz.train.run_loop`.

    ``x_syn`` is ``(n, H, W, C)`` (class ``j % classes`` at ``j``); ``x_real`` is ``(classes, m, H, W, C)``.
    Iteration ``i`` draws ``config.nets`` networks from ``fold_in(key(seed + 1), i)`` (:func:`over_networks`; the loss
    is their mean) and one DSA transform per class from ``fold_in(key(seed + 2), i)``.
    """

    def loss_fn(x_syn, x_real, i):
        syn = by_class(x_syn, num_classes)
        if config.augment:
            affines = dsa_params(jax.random.fold_in(jax.random.key(config.seed + 2), i), num_classes)
            x_real, syn = (jax.vmap(dsa_augment)(a, affines) for a in (x_real, syn))
        keys = jax.random.split(jax.random.fold_in(jax.random.key(config.seed + 1), i), config.nets)
        nets = jax.vmap(model.init)(keys)
        return over_networks(lambda p: dm_loss(model, p, x_real, syn, layer), nets).mean()

    def step(carry, batch):
        x_syn, opt_state = carry
        x_real, i = batch
        loss, g = jax.value_and_grad(loss_fn)(x_syn, x_real, i)
        updates, opt_state = optimizer.update(g, opt_state, x_syn)
        return (optax.apply_updates(x_syn, updates), opt_state), {"loss": loss}

    return step


def _check(model: Model, data: Dataset, config: MatchConfig) -> tuple[int, str]:
    check_match_config(config)
    model.require_head("distribution matching (the synthetic set trains a classifier)")
    if model.init is None:
        raise ShapeError(f"{model.name} has no init function, so random networks cannot be sampled; distribution matching "
                         "needs a model with init(key), e.g. a zoo model (convnet, lenet).")
    layer = embedding_layer(model, config.layer)
    k = model.num_classes
    counts = class_counts(model, data)
    short = np.flatnonzero(counts < max(config.real_per_class, config.images_per_class if config.init == "real" else 1))
    if short.size:
        raise ShapeError(f"{data.name} has only {int(counts.min())} training images of its smallest class ({int(counts.argmin())}); "
                         f"real_per_class ({config.real_per_class}) and, with init='real', images_per_class "
                         f"({config.images_per_class}) must not exceed that.")
    return k, layer


def _optimizer(config: MatchConfig) -> optax.GradientTransformation:
    if config.optimizer == "sgd":
        return optax.sgd(config.lr, config.momentum)
    return optax.adam(config.lr)


def initial_match(config: MatchConfig, data: Dataset, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Starting images ``(1, n, H, W, C)`` and labels ``(1, n)`` (class ``j % classes`` at ``j``)."""
    labels = np.tile(np.arange(config.images_per_class * num_classes, dtype=np.int32) % num_classes, (1, 1))
    if config.init == "real":
        x = random_real(data, labels, seed=config.seed)
    else:
        shape = (*labels.shape, *data.x_train.shape[1:])
        x = float(data.x_train.mean()) + float(data.x_train.std()) * jax.random.normal(jax.random.key(config.seed), shape)
    return jnp.asarray(x, jnp.float32), jnp.asarray(labels)


def distribution_matching(
    model: Model,
    data: Dataset,
    config: MatchConfig = MatchConfig(),
    *,
    cache: str | os.PathLike | None = None,
    checkpoint: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> DistillResult:
    """Condense ``data`` into ``images_per_class`` synthetic images per class by distribution matching.

    Args:
      model: a classifier with ``init(key)`` (fresh random networks are sampled every iteration) and a
        feature layer before its head (``config.layer``).
      data: the real training images (``x_train``, ``y_train``); every class needs at least
        ``real_per_class`` of them.
      config: see :class:`MatchConfig`.
      cache: checkpoints go to ``<cache>/checkpoints/dm-<model>-<data>-<hash>``; a later call with the
        same model, data and config resumes there, bit-identically.
      checkpoint: write orbax checkpoints (``False``: none, for tests and short runs).
      progress: show a progress bar with the current loss.
      stop_after_steps: end early at this iteration (checkpointed), e.g. to test resuming.

    Returns:
      a :class:`~jaxviz.distill.DistillResult`: ``distilled.x`` ``(1, n, H, W, C)``, integer
      ``labels`` ``(1, n)``, empty ``raw_lrs``, ``init_params`` ``None``, ``history["loss"]``.

    Raises:
      JaxvizError: a bad config, a class without real images, a model without ``init``.
      TrainingDivergedError: the loss became NaN or infinite (the iteration is named).
    """
    k, layer = _check(model, data, config)
    x0, labels = initial_match(config, data, k)
    optimizer = _optimizer(config)
    y = np.asarray(data.y_train)
    x_train = np.asarray(data.x_train, np.float32)
    pools = [np.flatnonzero(y == c) for c in range(k)]
    m = config.real_per_class

    def batches(i):
        rng = np.random.default_rng([config.seed, i])
        idx = np.stack([rng.choice(p, m, replace=False) for p in pools])
        return x_train[idx], np.int32(i)

    step = make_match_step(model, config, optimizer, k, layer)
    recipe = {f: v for f, v in config._asdict().items() if f != "checkpoint_seconds"}
    identity = dict(method="dm", model=model.name, input_shape=list(model.input_shape), dataset=data.name, config=recipe,
                    layer=layer, shapes=[list(a.shape) for a in jax.tree.leaves(model.params)])
    ckpt_dir = cache_dir(cache) / "checkpoints" / f"dm-{model.name}-{data.name}-{run_id(**identity)}" if checkpoint else None
    ckpt = Checkpointer(ckpt_dir) if checkpoint else None
    state = (x0[0], optimizer.init(x0[0]))
    try:
        run = run_loop(step, state, batches, steps=config.iterations, checkpointer=ckpt, meta=identity,
                       expect=dict(method="dm", model=model.name, dataset=data.name), desc=f"DM {data.name} for {model.name}",
                       progress=progress, checkpoint_seconds=config.checkpoint_seconds, stop_after_steps=stop_after_steps)
    finally:
        if ckpt is not None:
            ckpt.close()
    x = run.state[0][None]
    distilled = Distilled(x, labels, jnp.zeros((0,), jnp.float32))
    return DistillResult(distilled, None, config, model.name, data.name, run.history, run.seconds, run.resumed_from,
                         None if ckpt_dir is None else str(ckpt_dir))


def class_figure(result: DistillResult, class_names: Sequence[str], *, scale: int = 3, title: str | None = None) -> np.ndarray:
    """A synthetic set as one row per class (Zhao & Bilen's figures), one grey scale for every image.

    Works for any single-step set with hard labels (distribution matching, random real images).
    Returns an ``(H, W, 3)`` uint8 array.
    """
    d = result.distilled
    labels = np.asarray(d.labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise JaxvizError("class_figure needs hard (integer) labels; draw soft-label sets with soft_label_figure.")
    labels = labels.reshape(-1)
    x = np.asarray(d.x, np.float32).reshape(-1, *d.x.shape[-3:])
    lo, hi = np.percentile(x, [1, 99])
    x = np.clip((x - lo) / (hi - lo + 1e-12), 0, 1)
    classes = np.unique(labels)
    per = max(int(np.sum(labels == c)) for c in classes)
    tiles, names = [], []
    for c in classes:
        row = x[labels == c]
        tiles.extend(list(row) + [np.ones_like(x[0])] * (per - len(row)))
        names.extend([str(class_names[c])[:9]] + [""] * (per - 1))
    grid = image_grid(np.stack(tiles), ncols=per, labels=names, scale=scale) if per > 1 else \
        image_grid(np.stack(tiles), ncols=len(classes), labels=names, scale=scale)
    fig = Figure(figsize=(grid.shape[1] / 80, grid.shape[0] / 80 + 0.4), dpi=80)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid)
    ax.set_axis_off()
    ax.set_title(title or f"{result.model} on {result.dataset}: {per} image(s) per class", fontsize=9)
    fig.tight_layout(pad=0.3)
    return figure_to_array(fig)
