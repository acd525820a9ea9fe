"""Images from features: an up-convolutional network that draws an object from its identity and its
transformation parameters (Dosovitskiy, Springenberg & Brox, "Learning to Generate Chairs with
Convolutional Neural Networks", CVPR 2015).

Offline data stand in for the rendered chairs: ``n_items`` Fashion-MNIST (or MNIST-5k) images are the
identities, drawn on a canvas under known transformations (translation, rotation, zoom, stretch,
brightness) together with their foreground mask. The generator takes the one-hot identity and the
transformation vector (normalised to ``[-1, 1]``), runs them through separate fully connected streams,
concatenates them, and up-samples to an image and a mask, as in the paper. A band of one
transformation's values is never shown in training, so the reconstruction error there measures how
well the network interpolates. The paper's figures follow: each transformation swept with the others
fixed, morphs between identities by interpolating the identity input, and arithmetic in a hidden
layer. The same generator trained with each upsampling of :data:`~jaxviz.generate.UPSAMPLINGS` gives
the checkerboard study of Odena, Dumoulin & Olah ("Deconvolution and Checkerboard Artifacts",
distill.pub 2016).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from jaxviz.data import Dataset, load_dataset
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.generate.checkerboard import checkerboard_score
from jaxviz.generate.layers import UPSAMPLINGS, Upsample, check_choice
from jaxviz.train import Checkpointer, cache_dir, run_id, run_loop
from jaxviz.viz import image_grid

GENERATOR_DATASETS = ("fashion_mnist", "mnist5k")
TRANSFORMS = ("shift_x", "shift_y", "rotation", "zoom", "stretch", "brightness")
MAX_ITEMS = 1000


class Ranges(NamedTuple):
    """What a normalised transformation value ``p`` in ``[-1, 1]`` means on the canvas.

    shift: ``p * shift * canvas`` pixels (x to the right, y down); rotation: ``p * rotation`` degrees,
    counter-clockwise on screen; zoom: scale ``2 ** (p * zoom)``; stretch: aspect (width / height)
    ``2 ** (p * stretch)``; brightness: factor ``1 - brightness * (1 - p) / 2`` (1 at ``p = 1``).
    """

    shift: float = 0.15
    rotation: float = 45.0
    zoom: float = 0.35
    stretch: float = 0.35
    brightness: float = 0.5


IDENTITY = np.array([0, 0, 0, 0, 0, 1], np.float32)
"""The normalised transformation that draws an item unchanged, centred on the canvas."""


class Holdout(NamedTuple):
    """Values ``low <= p <= high`` of one normalised transformation that training never sees."""

    transform: str = "rotation"
    low: float = 0.25
    high: float = 0.6


class Items(NamedTuple):
    """The identities: ``(N, h, w, 1)`` grey images in ``[0, 1]`` with their source labels."""

    images: np.ndarray
    labels: np.ndarray  # class of each item in the source data set (-1 for raw images)
    names: tuple[str, ...]  # a short name per item, e.g. "Sneaker#2"


class Rendered(NamedTuple):
    images: jax.Array  # (B, S, S, 1) in [0, 1]
    masks: jax.Array  # (B, S, S, 1) in {0, 1}


class GeneratorConfig(NamedTuple):
    """The data, the network and its training. ``dataset``, ``n_items``, ``canvas``, ``hidden``,
    ``width`` and ``upsampling`` are the architecture a checkpoint must match."""

    dataset: str = "fashion_mnist"  # one of GENERATOR_DATASETS
    n_items: int = 20
    canvas: int = 32  # a multiple of 8
    hidden: int = 256  # width of the fully connected layers
    width: int = 32  # channels before the last upsampling (x2, x4 before the earlier ones)
    upsampling: str = "resize"  # one of UPSAMPLINGS
    ranges: Ranges = Ranges()
    holdout: Holdout | None = Holdout()
    threshold: float = 0.1  # foreground: item pixel above this (before brightness)
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 2e-3
    mask_weight: float = 1.0
    masked_image_loss: bool = False  # count the image error on the foreground only
    seed: int = 0


class GeneratorResult(NamedTuple):
    """A trained generator (``nnx.merge(graphdef, params)`` is the module) and how it was trained."""

    graphdef: Any
    params: Any
    config: GeneratorConfig
    items: Items
    history: dict[str, np.ndarray]  # per step (resumed runs included): "loss", "image_mse", "mask_mse"
    steps: int
    seconds: float
    resumed_from: int | None
    checkpoint_dir: str | None

    @property
    def holdout(self) -> Holdout | None:
        """The transformation values never seen in training (the held-out split)."""
        return self.config.holdout

    def module(self) -> UpConvGenerator:
        return nnx.merge(self.graphdef, self.params)


# ----------------------------------------------------------------------------- data


def select_items(source: str | Dataset | ArrayLike, n_items: int, *, seed: int = 0) -> Items:
    """``n_items`` identities from a data set (name or :class:`~jaxviz.data.Dataset`) or an image array.

    From a labelled set the items cycle through the classes (item ``k`` is of class ``k mod C``), each
    class's images in a fixed permutation drawn from ``seed``; from an ``(M, h, w[, 1])`` array they are
    the first ``n_items`` of a permutation.

    Raises:
      JaxvizError: unknown data set name or ``n_items`` outside ``1 .. min(MAX_ITEMS, available)``.
    """
    if isinstance(source, str):
        if source not in GENERATOR_DATASETS:
            raise JaxvizError(f"unknown data set {source!r} for the generator; choose one of {', '.join(GENERATOR_DATASETS)}.")
        source = load_dataset(source)
    rng = np.random.default_rng(seed)
    if isinstance(source, Dataset):
        x, y, classes = np.asarray(source.x_train), np.asarray(source.y_train), source.class_names
    else:
        x = np.asarray(source, np.float32)
        x = x[..., None] if x.ndim == 3 else x
        if x.ndim != 4 or x.shape[-1] != 1:
            raise ShapeError(f"items must be (M, h, w) or (M, h, w, 1) grey images; got shape {np.shape(source)}.")
        y, classes = np.full(len(x), -1), ()
    available = min(MAX_ITEMS, len(x))
    if not (isinstance(n_items, (int, np.integer)) and 1 <= n_items <= available):
        raise JaxvizError(f"n_items must be an integer from 1 to {available}; got {n_items!r}.")
    if classes:
        perms = [rng.permutation(np.flatnonzero(y == c)) for c in range(len(classes))]
        idx = np.array([perms[k % len(classes)][k // len(classes)] for k in range(n_items)])
        names = tuple(f"{classes[y[i]]}#{k // len(classes)}" for k, i in enumerate(idx))
    else:
        idx = rng.permutation(len(x))[:n_items]
        names = tuple(f"item{k}" for k in range(n_items))
    return Items(np.ascontiguousarray(x[idx], np.float32), y[idx].astype(np.int32), names)


def physical(transforms: ArrayLike, ranges: Ranges = Ranges(), canvas: int = 32) -> jax.Array:
    """Normalised ``(..., 6)`` transformations to their meaning (:class:`Ranges`): shift in pixels,
    rotation in degrees, zoom and aspect factors, brightness factor."""
    p = jnp.asarray(transforms, jnp.float32)
    return jnp.stack([p[..., 0] * ranges.shift * canvas, p[..., 1] * ranges.shift * canvas, p[..., 2] * ranges.rotation,
                      2.0 ** (p[..., 3] * ranges.zoom), 2.0 ** (p[..., 4] * ranges.stretch),
                      1 - ranges.brightness * (1 - p[..., 5]) / 2], axis=-1)


def normalised(values: ArrayLike, ranges: Ranges = Ranges(), canvas: int = 32) -> jax.Array:
    """The inverse of :func:`physical`."""
    v = jnp.asarray(values, jnp.float32)
    return jnp.stack([v[..., 0] / (ranges.shift * canvas), v[..., 1] / (ranges.shift * canvas), v[..., 2] / ranges.rotation,
                      jnp.log2(v[..., 3]) / ranges.zoom, jnp.log2(v[..., 4]) / ranges.stretch,
                      1 - 2 * (1 - v[..., 5]) / ranges.brightness], axis=-1)


def _warp(item: jax.Array, values: jax.Array, canvas: int) -> jax.Array:
    """One ``(h, w)`` item drawn on a ``canvas`` square under physical ``values`` (bilinear, zero outside)."""
    tx, ty, degrees, zoom, aspect, _ = values
    h, w = item.shape
    r, c = jnp.meshgrid(jnp.arange(canvas, dtype=jnp.float32), jnp.arange(canvas, dtype=jnp.float32), indexing="ij")
    x, y = c - (canvas - 1) / 2 - tx, r - (canvas - 1) / 2 - ty
    theta = jnp.deg2rad(degrees)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    # forward: out = R(theta) diag(sx, sy) u + t with R counter-clockwise on screen (y points down)
    u, v = cos * x - sin * y, sin * x + cos * y
    sx, sy = zoom * jnp.sqrt(aspect), zoom / jnp.sqrt(aspect)
    coords = jnp.stack([v / sy + (h - 1) / 2, u / sx + (w - 1) / 2])
    return jax.scipy.ndimage.map_coordinates(item, list(coords), order=1, mode="constant", cval=0.0)


def render_items(items: Items | ArrayLike, ids: ArrayLike, transforms: ArrayLike, *, canvas: int = 32,
                 ranges: Ranges = Ranges(), threshold: float = 0.1) -> Rendered:
    """Draw items ``ids`` under normalised ``transforms`` on a ``canvas`` square, with their masks.

    The item is scaled (zoom, stretch), rotated about its centre, moved by the shift, multiplied by the
    brightness; the mask is where the drawn item (before brightness) exceeds ``threshold``. With
    :data:`IDENTITY` a 28 px item on a 32 px canvas comes out unchanged, with 2 px of border.
    Deterministic and jittable (``vmap`` over the batch).

    Args:
      items: :class:`Items` or ``(N, h, w[, 1])`` grey images.
      ids: ``(B,)`` item indices.
      transforms: ``(B, 6)`` normalised values in the order of :data:`TRANSFORMS`.
    """
    x = jnp.asarray(items.images if isinstance(items, Items) else items, jnp.float32)
    x = x[..., 0] if x.ndim == 4 else x
    t = jnp.asarray(transforms, jnp.float32)
    if t.ndim != 2 or t.shape[-1] != len(TRANSFORMS) or jnp.ndim(ids) != 1 or jnp.shape(ids)[0] != t.shape[0]:
        raise ShapeError(f"render_items needs ids (B,) and transforms (B, {len(TRANSFORMS)}); got {jnp.shape(ids)} and {t.shape}.")
    return _render(x, jnp.asarray(ids), t, canvas, ranges, float(threshold))


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _render(x: jax.Array, ids: jax.Array, t: jax.Array, canvas: int, ranges: Ranges, threshold: float) -> Rendered:
    values = physical(t, ranges, canvas)
    drawn = jax.vmap(_warp, in_axes=(0, 0, None))(x[ids], values, canvas)[..., None]
    return Rendered(drawn * values[:, 5, None, None, None], (drawn > threshold).astype(jnp.float32))


def sample_transforms(key: jax.Array, n: int, holdout: Holdout | None = None, *, held_out: bool = False) -> jax.Array:
    """``(n, 6)`` normalised transformations, uniform on ``[-1, 1]``; with a ``holdout`` the held
    transformation is drawn outside its band (``held_out=False``, training values) or inside it."""
    t = jax.random.uniform(key, (n, len(TRANSFORMS)), minval=-1.0, maxval=1.0)
    if holdout is None:
        if held_out:
            raise JaxvizError("held_out=True needs a holdout band.")
        return t
    j, lo, hi = _check_holdout(holdout)
    u = (t[:, j] + 1) / 2  # uniform on [0, 1]
    held = lo + (hi - lo) * u if held_out else _outside(u, lo, hi)
    return t.at[:, j].set(held)


def _outside(u: jax.Array, lo: float, hi: float) -> jax.Array:
    """Uniform ``u`` on [0, 1] mapped uniformly onto ``[-1, lo) U (hi, 1]``."""
    s = u * (2 - (hi - lo)) - 1
    return jnp.where(s < lo, s, s + (hi - lo))


def _check_holdout(holdout: Holdout) -> tuple[int, float, float]:
    check_choice("held-out transformation", holdout.transform, TRANSFORMS)
    if not -1 <= holdout.low < holdout.high <= 1 or holdout.high - holdout.low >= 1:
        raise JaxvizError(f"the held-out band must satisfy -1 <= low < high <= 1 and be narrower than 1; got {holdout.low}..{holdout.high}.")
    return TRANSFORMS.index(holdout.transform), float(holdout.low), float(holdout.high)


# ----------------------------------------------------------------------------- network


class UpConvGenerator(nnx.Module):
    """(identity, transformation) -> (image, mask), Dosovitskiy et al. 2015's layout at small scale.

    Two fully connected streams (identity: one-hot of ``n_items``; transformation: ``n_transforms``
    values) of two layers each, concatenated and fused by two more fully connected layers, reshaped to a
    ``canvas/8``-square map of ``4 * width`` channels and up-sampled three times by
    :class:`~jaxviz.generate.Upsample`; the last upsampling is the head, one for the image and one for
    the mask, each followed by a sigmoid. ReLU everywhere else.
    """

    def __init__(self, n_items: int, *, n_transforms: int = len(TRANSFORMS), canvas: int = 32, hidden: int = 256,
                 width: int = 32, upsampling: str = "resize", channels: int = 1, rngs: nnx.Rngs):
        check_choice("upsampling", upsampling, UPSAMPLINGS)
        if canvas % 8 or canvas < 16:
            raise JaxvizError(f"the canvas must be a multiple of 8 of at least 16 px; got {canvas}.")
        self.base = canvas // 8
        self.width = width
        self.identity = nnx.List([nnx.Linear(n_items, hidden, rngs=rngs), nnx.Linear(hidden, hidden, rngs=rngs)])
        self.transform = nnx.List([nnx.Linear(n_transforms, hidden, rngs=rngs), nnx.Linear(hidden, hidden, rngs=rngs)])
        self.fuse = nnx.Linear(2 * hidden, 2 * hidden, rngs=rngs)
        self.expand = nnx.Linear(2 * hidden, self.base * self.base * 4 * width, rngs=rngs)
        self.up = nnx.List([Upsample(4 * width, 2 * width, upsampling, rngs=rngs), Upsample(2 * width, width, upsampling, rngs=rngs)])
        self.image_head = Upsample(width, channels, upsampling, rngs=rngs)
        self.mask_head = Upsample(width, 1, upsampling, rngs=rngs)

    def hidden(self, identity: jax.Array, transform: jax.Array) -> jax.Array:
        """The last fully connected features ``(B, (canvas/8)^2 * 4 * width)``, two layers after the
        streams meet (where the arithmetic happens)."""
        a, b = identity, transform
        for layer in self.identity:
            a = jax.nn.relu(layer(a))
        for layer in self.transform:
            b = jax.nn.relu(layer(b))
        h = jax.nn.relu(self.fuse(jnp.concatenate([a, b], axis=-1)))
        return jax.nn.relu(self.expand(h))

    def decode(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Hidden features to ``(image, mask)``, each ``(B, canvas, canvas, C)`` in ``[0, 1]``."""
        x = h.reshape(h.shape[0], self.base, self.base, 4 * self.width)
        for layer in self.up:
            x = jax.nn.relu(layer(x))
        return jax.nn.sigmoid(self.image_head(x)), jax.nn.sigmoid(self.mask_head(x))

    def __call__(self, identity: jax.Array, transform: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.decode(self.hidden(identity, transform))


def build_generator(config: GeneratorConfig) -> UpConvGenerator:
    """The untrained generator of ``config``: LeCun-normal weights (truncated at two standard
    deviations, as flax's default) drawn with NumPy from ``config.seed``, zero biases. Drawing them on
    the host skips compiling one initialiser per weight shape, which costs seconds on a CPU."""
    check_choice("upsampling", config.upsampling, UPSAMPLINGS)
    abstract = nnx.eval_shape(lambda: UpConvGenerator(config.n_items, canvas=config.canvas, hidden=config.hidden, width=config.width,
                                                      upsampling=config.upsampling, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(config.seed)

    def init(path, leaf):
        if path[-2] != jax.tree_util.DictKey("kernel"):
            return jnp.zeros(leaf.shape, leaf.dtype)
        std = 1 / np.sqrt(np.prod(leaf.shape[:-1])) / 0.87962566103423978  # flax's lecun_normal
        z = rng.standard_normal(leaf.shape)
        while np.any(bad := np.abs(z) > 2):
            z[bad] = rng.standard_normal(int(bad.sum()))
        return jnp.asarray(z * std, leaf.dtype)

    return nnx.merge(graphdef, jax.tree_util.tree_map_with_path(init, state))


CHUNK = 64  # host-side calls run in chunks of this many, padded: one compiled program per method


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(graphdef, method: str, params, *args):
    return getattr(nnx.merge(graphdef, params), method)(*args)


def _chunked(fn, *arrays):
    """``fn(*arrays)`` evaluated on chunks of :data:`CHUNK` rows (the last one zero-padded), joined."""
    n = arrays[0].shape[0]
    pad = -n % CHUNK
    padded = [jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a for a in arrays]
    outs = [fn(*(a[i:i + CHUNK] for a in padded)) for i in range(0, n + pad, CHUNK)]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs)[:n], *outs)


def _run(graphdef, method: str, params, *args):
    return _chunked(functools.partial(_apply, graphdef, method, params), *args)


def _render_host(result: GeneratorResult, ids: ArrayLike, transforms: ArrayLike) -> Rendered:
    c = result.config
    return _chunked(lambda i, t: render_items(result.items, i, t, canvas=c.canvas, ranges=c.ranges, threshold=c.threshold),
                    jnp.asarray(ids), jnp.asarray(transforms, jnp.float32))


def _identity_input(result: GeneratorResult, identity: ArrayLike) -> jax.Array:
    n = result.config.n_items
    identity = jnp.asarray(identity)
    if identity.ndim == 1:
        if jnp.issubdtype(identity.dtype, jnp.floating):
            raise ShapeError("give items as integer ids (B,) or identity vectors (B, n_items)")
        if int(identity.min()) < 0 or int(identity.max()) >= n:
            raise JaxvizError(f"item ids must be in 0..{n - 1}; got {identity.min()}..{identity.max()}.")
        return jax.nn.one_hot(identity, n)
    if identity.ndim != 2 or identity.shape[1] != n:
        raise ShapeError(f"identity vectors must be (B, {n}); got {identity.shape}.")
    return identity.astype(jnp.float32)


def generate(result: GeneratorResult, identity: ArrayLike, transforms: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(images, masks)`` for items (``(B,)`` ids or ``(B, n_items)`` identity vectors, e.g. blends)
    under ``(B, 6)`` normalised transformations; one compiled program per batch size."""
    return _run(result.graphdef, "__call__", result.params, _identity_input(result, identity), jnp.asarray(transforms, jnp.float32))


def hidden_features(result: GeneratorResult, identity: ArrayLike, transforms: ArrayLike) -> jax.Array:
    """The hidden layer of :meth:`UpConvGenerator.hidden` for the given inputs."""
    return _run(result.graphdef, "hidden", result.params, _identity_input(result, identity), jnp.asarray(transforms, jnp.float32))


def decode_hidden(result: GeneratorResult, h: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(images, masks)`` from hidden features (e.g. the result of arithmetic on them)."""
    return _run(result.graphdef, "decode", result.params, jnp.asarray(h, jnp.float32))


# ----------------------------------------------------------------------------- training


def _recipe(config: GeneratorConfig) -> dict:
    d = config._asdict()
    d["ranges"] = config.ranges._asdict()
    d["holdout"] = None if config.holdout is None else config.holdout._asdict()
    return d


def _architecture(config: GeneratorConfig) -> dict:
    return {k: getattr(config, k) for k in ("dataset", "n_items", "canvas", "hidden", "width", "upsampling")}


def check_config(config: GeneratorConfig) -> GeneratorConfig:
    """Validate a config (raises :class:`~jaxviz.errors.JaxvizError` saying which field is wrong)."""
    check_choice("data set", config.dataset, GENERATOR_DATASETS)
    check_choice("upsampling", config.upsampling, UPSAMPLINGS)
    if not 1 <= config.n_items <= MAX_ITEMS:
        raise JaxvizError(f"n_items must be from 1 to {MAX_ITEMS}; got {config.n_items}.")
    if config.canvas % 8 or config.canvas < 16:
        raise JaxvizError(f"the canvas must be a multiple of 8 of at least 16 px; got {config.canvas}.")
    if config.steps < 1 or config.batch_size < 1:
        raise JaxvizError(f"steps and batch_size must be positive; got {config.steps} and {config.batch_size}.")
    if config.holdout is not None:
        _check_holdout(config.holdout)
    return config


def checkpoint_dir_for(config: GeneratorConfig, cache: str | os.PathLike | None = None) -> Path:
    """``<cache>/checkpoints/generator-<upsampling>-<hash of the whole config>``: one folder per run, so
    a second call with the same config loads it (used by :func:`generator_tour` and ``jaxviz generate``)."""
    return cache_dir(cache) / "checkpoints" / f"generator-{config.upsampling}-{run_id(**_recipe(config))}"


def _optimizer(config: GeneratorConfig) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.steps, alpha=0.05))


@functools.lru_cache(maxsize=8)
def _make_step(graphdef, config: GeneratorConfig):
    """The training step of ``config`` (cached, so a resumed run reuses the compiled program)."""
    key, optimizer = jax.random.key(config.seed), _optimizer(config)

    def step(carry, batch):
        params, opt_state = carry
        i, items = batch
        k_ids, k_t = jax.random.split(jax.random.fold_in(key, i))
        ids = jax.random.randint(k_ids, (config.batch_size,), 0, config.n_items)
        t = sample_transforms(k_t, config.batch_size, config.holdout)
        target = render_items(items, ids, t, canvas=config.canvas, ranges=config.ranges, threshold=config.threshold)
        onehot = jax.nn.one_hot(ids, config.n_items)

        def loss_fn(p):
            image, mask = nnx.merge(graphdef, p)(onehot, t)
            err = (image - target.images) ** 2
            image_mse = (err * target.masks).sum() / jnp.maximum(target.masks.sum(), 1.0) if config.masked_image_loss else err.mean()
            mask_mse = ((mask - target.masks) ** 2).mean()
            return image_mse + config.mask_weight * mask_mse, (image_mse, mask_mse)

        (loss, (image_mse, mask_mse)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss, "image_mse": image_mse, "mask_mse": mask_mse}

    return step


def train_generator(config: GeneratorConfig = GeneratorConfig(), *, items: Items | None = None,
                    checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                    stop_after_steps: int | None = None, checkpoint_every: int = 0) -> GeneratorResult:
    """Train the generator of ``config`` with Adam (cosine-decayed learning rate) on freshly rendered batches.

    Each step draws ``batch_size`` items and transformations from ``fold_in(key(seed), step)`` (the
    held-out band excluded), renders the targets and takes one step on the squared error of the image
    plus ``mask_weight`` times that of the mask (the paper's loss), all in one compiled step run by
    :func:`jaxviz.train.run_loop`. With a ``checkpoint_dir`` the run checkpoints there and resumes
    (a finished run is loaded, not retrained); a checkpoint of another architecture or data raises
    :class:`~jaxviz.errors.CheckpointError`.

    Args:
      config: data, architecture and training settings.
      items: the identities (default: :func:`select_items` of ``config.dataset`` with ``config.seed``).
      checkpoint_dir: where to checkpoint and resume; ``None``: no checkpoints.
      stop_after_steps: end early at this global step (checkpointed), e.g. to test resuming.
    """
    check_config(config)
    items = select_items(config.dataset, config.n_items, seed=config.seed) if items is None else items
    if len(items.images) != config.n_items:
        raise ShapeError(f"config.n_items is {config.n_items} but {len(items.images)} items were given.")
    graphdef, params = nnx.split(build_generator(config))
    images = jnp.asarray(items.images)
    ckpt = None if checkpoint_dir is None else Checkpointer(checkpoint_dir)
    try:
        run = run_loop(_make_step(graphdef, config), (params, _optimizer(config).init(params)), lambda i: (np.int32(i), images),
                       steps=config.steps, checkpointer=ckpt,
                       meta=dict(kind="from_features", architecture=_architecture(config), config=_recipe(config)),
                       expect=dict(kind="from_features", architecture=_architecture(config)),
                       desc=f"generator ({config.upsampling})", progress=progress, stop_after_steps=stop_after_steps,
                       checkpoint_every=checkpoint_every)
    finally:
        if ckpt is not None:
            ckpt.close()
    return GeneratorResult(graphdef, run.state[0], config, items, run.history, run.step, run.seconds, run.resumed_from,
                           None if checkpoint_dir is None else str(checkpoint_dir))


# ----------------------------------------------------------------------------- evaluation


class Evaluation(NamedTuple):
    """Reconstruction errors on fresh transformations from the training values and from the held-out band."""

    train: dict[str, float]  # image_mse, mask_mse, mask_iou
    held_out: dict[str, float] | None  # the same inside the held-out band (None without a holdout)
    n: int


def _errors(result: GeneratorResult, ids: jax.Array, t: jax.Array) -> dict[str, float]:
    target = _render_host(result, ids, t)
    image, mask = generate(result, ids, t)
    pred, true = np.asarray(mask) > 0.5, np.asarray(target.masks) > 0.5
    union = (pred | true).sum()
    return {"image_mse": float(jnp.mean((image - target.images) ** 2)), "mask_mse": float(jnp.mean((mask - target.masks) ** 2)),
            "mask_iou": float((pred & true).sum() / union) if union else 1.0}


def evaluate_generator(result: GeneratorResult, n: int = 512, *, key: jax.Array | None = None) -> Evaluation:
    """Image MSE, mask MSE and mask IoU (mask > 0.5) of ``n`` random items and transformations drawn
    from the training values and ``n`` drawn inside the held-out band; ``key`` defaults to one that
    training never uses."""
    key = jax.random.key(result.config.seed + 10_007) if key is None else key
    k_ids, k_train, k_held = jax.random.split(key, 3)
    ids = jax.random.randint(k_ids, (n,), 0, result.config.n_items)
    train = _errors(result, ids, sample_transforms(k_train, n, result.config.holdout))
    held = None if result.config.holdout is None else _errors(result, ids, sample_transforms(k_held, n, result.config.holdout, held_out=True))
    return Evaluation(train, held, n)


# ----------------------------------------------------------------------------- figures


def _neutral(n: int) -> np.ndarray:
    return np.tile(IDENTITY, (n, 1))


def sweep_figure(result: GeneratorResult, item: int = 0, n: int = 9, *, truth: bool = False, scale: int = 2) -> np.ndarray:
    """One row per transformation swept over ``n`` values in ``[-1, 1]`` with the others at
    :data:`IDENTITY` (the paper's Figure 5); ``truth=True`` puts the rendered target under each row."""
    values = np.linspace(-1, 1, n, dtype=np.float32)
    rows = []
    for j in range(len(TRANSFORMS)):
        t = _neutral(n)
        t[:, j] = values
        ids = np.full(n, item)
        rows.append(np.asarray(generate(result, ids, t)[0]))
        if truth:
            rows.append(np.asarray(_render_host(result, ids, t).images))
    return image_grid(np.concatenate(rows), ncols=n, scale=scale)


def morph_figure(result: GeneratorResult, pairs: Sequence[tuple[int, int]], n: int = 9, *, scale: int = 2) -> np.ndarray:
    """One row per pair ``(a, b)``: the identity input blended ``(1 - s) e_a + s e_b`` for ``n`` values of
    ``s`` from 0 to 1, transformation :data:`IDENTITY` (the paper's morphing between chairs)."""
    s = np.linspace(0, 1, n, dtype=np.float32)[:, None]
    eye = np.eye(result.config.n_items, dtype=np.float32)
    blends = np.concatenate([(1 - s) * eye[a] + s * eye[b] for a, b in pairs])
    return image_grid(np.asarray(generate(result, blends, _neutral(len(blends)))[0]), ncols=n, scale=scale)


class Arithmetic(NamedTuple):
    """``h(a, t1) - h(a, t0) + h(b, t0)`` decoded, compared with the direct ways to get ``(b, t1)``."""

    figure: np.ndarray  # rows: G(a,t0), G(a,t1), G(b,t0), decoded arithmetic, G(b,t1), rendered (b,t1)
    mse_vs_generator: float  # decoded arithmetic vs G(b, t1)
    mse_vs_render: float  # decoded arithmetic vs the rendered (b, t1)
    generator_vs_render: float  # G(b, t1) vs the rendered (b, t1): the best to expect
    unchanged_vs_render: float  # G(b, t0) vs the rendered (b, t1): what no transfer gives


def arithmetic(result: GeneratorResult, pairs: Sequence[tuple[int, int]], transform: str = "rotation",
               values: tuple[float, float] = (0.0, -0.8), *, scale: int = 2) -> Arithmetic:
    """Transfer a transformation from item ``a`` to item ``b`` in the fused hidden layer, for each pair."""
    j = TRANSFORMS.index(check_choice("transformation", transform, TRANSFORMS))
    a, b = (np.array(v) for v in zip(*pairs))
    t0, t1 = _neutral(len(a)), _neutral(len(a))
    t0[:, j], t1[:, j] = values
    h = hidden_features(result, a, t1) - hidden_features(result, a, t0) + hidden_features(result, b, t0)
    mixed = decode_hidden(result, h)[0]
    g = {name: generate(result, ids, t)[0] for name, ids, t in (("a0", a, t0), ("a1", a, t1), ("b0", b, t0), ("b1", b, t1))}
    truth = _render_host(result, b, t1).images
    cols = [g["a0"], g["a1"], g["b0"], mixed, g["b1"], truth]
    figure = image_grid(np.stack([np.asarray(x) for x in cols], axis=1).reshape(-1, *mixed.shape[1:]), ncols=len(cols), scale=scale)

    def mse(x, y):
        return float(jnp.mean((x - y) ** 2))

    return Arithmetic(figure, mse(mixed, g["b1"]), mse(mixed, truth), mse(g["b1"], truth), mse(g["b0"], truth))


# ----------------------------------------------------------------------------- checkerboard study


def checkerboard_study(config: GeneratorConfig = GeneratorConfig(), *, upsamplings: Sequence[str] = UPSAMPLINGS,
                       cache: str | os.PathLike | None = None, n: int = 64, progress: bool = False) -> list[dict]:
    """The same generator, data and training with each upsampling, and the checkerboard score of its outputs.

    Each variant is ``config`` with another ``upsampling`` (checkpointed under ``cache`` when given, so a
    rerun loads it). The scores are the mean :func:`~jaxviz.generate.checkerboard_score` (stride 2) of
    ``n`` generated images of training values, on the pixels, on their gradient, and on the residual
    (generated minus rendered target), where the objects' own spectrum cancels and what is left at the
    stride frequencies is the artifact; ``score_untrained`` is the pixel score of the same network
    before training (transposed convolutions start with strong checkerboards and training on these
    plain targets removes much of them).

    Returns:
      per variant ``{"upsampling", "score", "score_gradient", "score_residual", "score_untrained", "image_mse",
      "image", "outputs", "seconds"}`` with ``image`` an ``(H, W, 3)`` grid of 8 generated images and
      ``outputs`` the ``n`` scored images.
    """
    key = jax.random.key(config.seed + 20_011)
    ids = jax.random.randint(key, (n,), 0, config.n_items)
    t = sample_transforms(jax.random.fold_in(key, 1), n, config.holdout)
    out = []
    for mode in upsamplings:
        variant = config._replace(upsampling=check_choice("upsampling", mode, UPSAMPLINGS))
        res = train_generator(variant, checkpoint_dir=None if cache is None else checkpoint_dir_for(variant, cache), progress=progress)
        images = np.asarray(generate(res, ids, t)[0])
        target = _render_host(res, ids, t).images
        out.append({"upsampling": mode, "score": float(checkerboard_score(images).mean()),
                    "score_gradient": float(checkerboard_score(images, gradient=True).mean()),
                    "score_residual": float(checkerboard_score(images - np.asarray(target)).mean()),
                    "score_untrained": float(checkerboard_score(generate(res._replace(params=nnx.split(build_generator(variant))[1]), ids, t)[0]).mean()),
                    "image_mse": float(jnp.mean((images - target) ** 2)),
                    "image": image_grid(images[:8], ncols=4, scale=2), "outputs": images, "seconds": res.seconds})
    return out


def study_scores(study: Sequence[dict]) -> list[dict]:
    """The numbers of a :func:`checkerboard_study` (its ``image`` and ``outputs`` arrays left out), as JSON can hold them."""
    return [{k: v for k, v in variant.items() if k not in ("image", "outputs")} for variant in study]


def checkerboard_figure(study: Sequence[dict]) -> np.ndarray:
    """The variants' sample grids side by side, labelled with upsampling and score."""
    return image_grid([v["image"] for v in study], ncols=len(study), pad=6,
                      labels=[f"{v['upsampling']}: {v['score']:.2f}" for v in study])


# ----------------------------------------------------------------------------- the tour's study

QUICK_CONFIG = GeneratorConfig(n_items=10, hidden=128, width=8, batch_size=32, steps=150, learning_rate=5e-3)
"""Small enough to train three times in well under a minute on two CPU cores."""
FULL_CONFIG = GeneratorConfig(n_items=20, hidden=256, width=16, batch_size=32, steps=1200, learning_rate=3e-3)
STUDY_FULL_CONFIG = QUICK_CONFIG._replace(steps=500)
"""The checkerboard study's generator in full mode (three trainings of it)."""
MORPH_PAIRS = ((0, 1), (2, 3), (4, 5))
ARITHMETIC_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7))


def generator_tour(quick: bool = True, seed: int = 0, cache: str | os.PathLike | None = None, *,
                   progress: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """Train (or load from ``cache``) the generator and make the paper's figures and the checkerboard study.

    Quick mode trains :data:`QUICK_CONFIG` with each upsampling (the resize one is also the generator
    of the figures); full mode trains :data:`FULL_CONFIG` and the study on :data:`STUDY_FULL_CONFIG`.
    Everything is checkpointed under ``<cache>/checkpoints``, so a second call loads instead of training.

    Returns:
      ``(figures, numbers)``: figures ``"sweeps"`` (per transformation: generated row, rendered row),
      ``"morph"``, ``"arithmetic"``, ``"checkerboard"``, ``"checkerboard-<upsampling>"`` (8 outputs) and
      ``"checkerboard-outputs-<upsampling>"`` (the study's 64 scored outputs as an unpadded 8x8 mosaic), as
      ``(H, W, 3)`` arrays; numbers: the config, training seconds, reconstruction errors on training
      and held-out transformation values, the arithmetic errors and the checkerboard scores.
    """
    config = (QUICK_CONFIG if quick else FULL_CONFIG)._replace(seed=seed)
    study_config = (QUICK_CONFIG if quick else STUDY_FULL_CONFIG)._replace(seed=seed)
    result = train_generator(config, checkpoint_dir=checkpoint_dir_for(config, cache), progress=progress)
    evaluation = evaluate_generator(result, 256 if quick else 1024)
    arith = arithmetic(result, ARITHMETIC_PAIRS)
    study = checkerboard_study(study_config, cache=cache, progress=progress)
    figures = {"sweeps": sweep_figure(result, truth=True), "morph": morph_figure(result, MORPH_PAIRS),
               "arithmetic": arith.figure, "checkerboard": checkerboard_figure(study),
               **{f"checkerboard-{v['upsampling']}": v["image"] for v in study},
               **{f"checkerboard-outputs-{v['upsampling']}": image_grid(v["outputs"], ncols=8, pad=0) for v in study}}
    numbers = {
        "config": _recipe(config),
        "items": list(result.items.names),
        "train_seconds": result.seconds,
        "trained_steps": result.steps - (result.resumed_from or 0),
        "final_loss": float(result.history["loss"][-1]) if len(result.history.get("loss", ())) else None,
        "reconstruction": {"train": evaluation.train, "held_out": evaluation.held_out, "n": evaluation.n,
                           "holdout": None if config.holdout is None else config.holdout._asdict()},
        "arithmetic": {"transform": "rotation", "pairs": [list(p) for p in ARITHMETIC_PAIRS],
                       **{k: v for k, v in arith._asdict().items() if k != "figure"}},
        "checkerboard": study_scores(study),
        "checkerboard_config": _recipe(study_config),
    }
    return figures, numbers
