"""Fast style transfer: a feed-forward transformer network trained with perceptual losses.

Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution"
(ECCV 2016): a 9x9 convolution, two stride-2 downsampling convolutions, residual blocks, two
upsamplings and a 9x9 convolution, reflect padding, trained so that one pass minimises the content,
Gram-style and total-variation losses of Gatys et al. on a loss network. Instance normalisation
(Ulyanov, Vedaldi & Lempitsky, "Instance Normalization: The Missing Ingredient for Fast
Stylization", 2016) is the default; batch norm is an option. Training with noise added to the input
(and the content target taken from the clean image) makes the output stable under input noise.

The losses are :class:`jaxviz.style.Objective`'s, so the style and content losses of a feed-forward
image and of an optimised one (:func:`jaxviz.style.style_transfer`) are the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.generate.images import ImageSource, content_images
from jaxviz.generate.layers import NORMS, UPSAMPLINGS, ConvLayer, Upsample, build_on_host, check_choice, norm_layer
from jaxviz.models.contract import Model
from jaxviz.models.squeezenet import squeezenet
from jaxviz.style import _common
from jaxviz.style.features import check_image_size, content_layer, extractor, style_layers
from jaxviz.style.optimize import Objective
from jaxviz.style.stats import style_statistic
from jaxviz.train.checkpoints import Checkpointer, latest_checkpoint
from jaxviz.train.loop import run_loop

NETWORK = "johnson"
STRIDE = 4  # two stride-2 downsamplings: sizes are padded to a multiple of 4


class ResidualBlock(nnx.Module):
    """Two 3x3 convolutions with normalisation and a skip connection (Johnson et al., supplementary)."""

    def __init__(self, channels: int, norm: str, *, rngs: nnx.Rngs):
        self.conv1, self.norm1 = ConvLayer(channels, channels, 3, rngs=rngs), norm_layer(norm, channels, rngs=rngs)
        self.conv2, self.norm2 = ConvLayer(channels, channels, 3, rngs=rngs), norm_layer(norm, channels, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(h))


class TransformerNet(nnx.Module):
    """Johnson et al.'s image transformation network; pixels in [0, 1] in and out, any size divisible by 4."""

    def __init__(self, *, width: int = 32, residual_blocks: int = 5, norm: str = "instance",
                 upsampling: str = "resize", channels: int = 3, rngs: nnx.Rngs):
        w = width
        self.down = nnx.List([ConvLayer(channels, w, 9, rngs=rngs), ConvLayer(w, 2 * w, 3, 2, rngs=rngs),
                              ConvLayer(2 * w, 4 * w, 3, 2, rngs=rngs)])
        self.down_norms = nnx.List([norm_layer(norm, c, rngs=rngs) for c in (w, 2 * w, 4 * w)])
        self.blocks = nnx.List([ResidualBlock(4 * w, norm, rngs=rngs) for _ in range(residual_blocks)])
        self.up = nnx.List([Upsample(4 * w, 2 * w, upsampling, rngs=rngs), Upsample(2 * w, w, upsampling, rngs=rngs)])
        self.up_norms = nnx.List([norm_layer(norm, c, rngs=rngs) for c in (2 * w, w)])
        self.out = ConvLayer(w, channels, 9, rngs=rngs)

    def __call__(self, x):
        h = x - 0.5
        for conv, norm in zip(self.down, self.down_norms):
            h = jax.nn.relu(norm(conv(h)))
        for block in self.blocks:
            h = block(h)
        for up, norm in zip(self.up, self.up_norms):
            h = jax.nn.relu(norm(up(h)))
        return jax.nn.sigmoid(self.out(h))


class FastStyleConfig(NamedTuple):
    """Architecture and training settings (Johnson et al.'s are ``width=32``, 5 blocks, 256 px, batch 4).

    ``style_weight``/``content_weight``/``tv_weight`` weigh :class:`~jaxviz.style.Objective`'s
    normalised terms; ``noise_std`` is the standard deviation of the Gaussian noise added to the
    training inputs (0: none) and ``stability_weight`` weighs the mean squared change of the output
    between the clean and the noisy input (Gupta et al., "Characterizing and Improving Stability in
    Neural Style Transfer", ICCV 2017; 0: noise augmentation alone); ``style_size`` the side the style image is resized to for its Gram
    targets (default ``size``).
    """

    width: int = 32
    residual_blocks: int = 5
    norm: str = "instance"
    upsampling: str = "resize"
    size: int = 256
    batch_size: int = 4
    steps: int = 2000
    learning_rate: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 10.0
    noise_std: float = 0.0
    stability_weight: float = 0.0
    style_size: int | None = None
    seed: int = 0

    def architecture(self) -> dict[str, Any]:
        return {"network": NETWORK, "width": self.width, "residual_blocks": self.residual_blocks, "norm": self.norm,
                "upsampling": self.upsampling}


def check_config(config: FastStyleConfig) -> FastStyleConfig:
    """``config`` if every field is valid, else a :class:`JaxvizError` naming the field."""
    check_choice("normalisation", config.norm, NORMS)
    check_choice("upsampling", config.upsampling, UPSAMPLINGS)
    for name in ("width", "residual_blocks", "size", "batch_size", "steps"):
        if int(getattr(config, name)) < (0 if name == "residual_blocks" else 1):
            raise JaxvizError(f"{name} must be positive; got {getattr(config, name)}.")
    if config.stability_weight and not config.noise_std:
        raise JaxvizError("stability_weight needs noise_std > 0: the stability loss compares outputs for clean and noisy inputs.")
    if config.size % STRIDE:
        raise JaxvizError(f"size must be a multiple of {STRIDE} (two stride-2 downsamplings); got {config.size}.")
    for name in ("learning_rate", "content_weight", "style_weight", "tv_weight", "noise_std", "stability_weight"):
        v = getattr(config, name)
        if not np.isfinite(v) or v < 0:
            raise JaxvizError(f"{name} must be a non-negative number; got {v}.")
    return config


def transformer(config: FastStyleConfig = FastStyleConfig(), key: jax.Array | None = None) -> TransformerNet:
    """A freshly initialised :class:`TransformerNet` with ``config``'s architecture."""
    check_config(config)
    key = jax.random.key(config.seed) if key is None else key
    return build_on_host(lambda rngs: TransformerNet(width=config.width, residual_blocks=config.residual_blocks,
                                                     norm=config.norm, upsampling=config.upsampling, rngs=rngs), key)


class FastStyle(NamedTuple):
    """A trained (or fresh) transformer network: ``fast_style(images)`` stylises ``(B, H, W, 3)`` in one pass."""

    graphdef: Any
    params: Any
    state: Any
    config: FastStyleConfig
    style: str  # what it was trained on (a name and a fingerprint of the style image)

    def __call__(self, images: ArrayLike) -> jax.Array:
        return stylise(self, images)


def _network(graphdef, params, state, *, train: bool) -> TransformerNet:
    net = nnx.merge(graphdef, params, state, copy=True)
    net.train() if train else net.eval()
    return net


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, params, state, x: jax.Array) -> jax.Array:
    return _network(graphdef, params, state, train=False)(x)


def stylise(fast: FastStyle, images: ArrayLike) -> jax.Array:
    """Stylise ``(H, W, 3)`` or ``(B, H, W, 3)`` images in [0, 1] of any size in one compiled pass.

    Sizes that are not a multiple of 4 are reflect-padded and the result cropped back.
    """
    x = _common.as_batch(images, "content image")
    if x.shape[-1] != 3:
        raise ShapeError(f"the transformer network takes RGB images; got {x.shape[-1]} channel(s). Use jaxviz.data.to_rgb.")
    h, w = x.shape[1:3]
    if min(h, w) < 8:
        raise ShapeError(f"the image ({h}x{w}) is too small; give at least 8x8 pixels.")
    ph, pw = -h % STRIDE, -w % STRIDE
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
    y = _forward(fast.graphdef, fast.params, fast.state, jnp.asarray(x))
    return y[:, :h, :w] if ph or pw else y


class FastStyleResult(NamedTuple):
    """Result of :func:`train_fast_style`: the network, per-step losses and where the run started."""

    network: FastStyle
    history: dict[str, np.ndarray]
    steps: int
    resumed_from: int | None
    seconds: float


def style_fingerprint(style_image: np.ndarray, name: str | None = None) -> str:
    digest = hashlib.sha1(np.ascontiguousarray(np.round(np.asarray(style_image, np.float32) * 255).astype(np.uint8))).hexdigest()[:12]
    return f"{name or 'style'}-{digest}"


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Losses:
    """The perceptual losses: an extractor of the loss network's layers, the objective and the style targets."""

    ext: Any
    style: dict[str, jax.Array]
    layer_weights: jax.Array
    objective: Objective = dataclasses.field(metadata=dict(static=True))


def perceptual_losses(style_image: ArrayLike, *, loss_model: Model | None = None, size: int = 256,
                      style_size: int | None = None) -> Losses:
    """Gatys et al.'s normalised style (Gram) and content losses on ``loss_model`` (default SqueezeNet 1.1).

    The style targets are the Gram matrices of ``style_image`` resized to ``style_size`` (default
    ``size``: the style's scale matches the training crops).
    """
    from jaxviz.data import resize

    model = squeezenet() if loss_model is None else loss_model
    s = _common.as_batch(style_image, "style image")
    if s.shape[0] != 1 or s.shape[-1] != 3:
        raise ShapeError(f"give one RGB style image (H, W, 3); got shape {np.shape(style_image)}.")
    s = resize(s[0], style_size or size)[None]
    names = style_layers(model)
    content_name = content_layer(model)
    objective = Objective(names, statistic="gram", content_layer=content_name, normalize=True)
    ext = extractor(model, objective.layers)
    check_image_size(ext, (1, size, size, 3), "training crop")
    check_image_size(ext, s.shape, "style image")
    style = _style_targets(ext, jnp.asarray(s), names)
    return Losses(ext, style, jnp.full((1, len(names)), 1.0 / len(names), jnp.float32), objective)


@functools.partial(jax.jit, static_argnames="names")
def _style_targets(ext, x, names):
    acts = ext(x)
    return {n: style_statistic(acts[n], "gram") for n in names}


def loss_terms(losses: Losses, y: jax.Array, content: jax.Array) -> dict[str, jax.Array]:
    """Per-image ``style``, ``content`` and ``tv`` terms of output ``y`` for clean inputs ``content``."""
    target = losses.ext(content)[losses.objective.content_layer]
    args = {"style": losses.style, "layer_weights": losses.layer_weights, "content": jax.lax.stop_gradient(target)}
    return losses.objective.terms(losses.ext(y), y, args)


@functools.lru_cache(maxsize=8)
def _train_step(graphdef, learning_rate: float, stability: bool):
    """The step for an architecture, compiled once: losses, loss weights and noise travel with each batch.

    With ``stability`` the clean and the noisy inputs go through the network as one batch of twice
    the size, and the mean squared difference of their outputs is a fourth loss term.
    """
    optimizer = optax.adam(learning_rate)

    def step(carry, batch):
        params, state, opt_state = carry
        x, key, losses, weights, noise_std = batch
        noisy = x + noise_std * jax.random.normal(key, x.shape)

        def loss_fn(p):
            net = _network(graphdef, p, state, train=True)
            if stability:
                y, clean = jnp.split(net(jnp.concatenate([noisy, x])), 2)
            else:
                y = net(noisy)
            t = loss_terms(losses, y, x)
            total = weights[0] * t["style"] + weights[1] * t["content"] + weights[2] * t["tv"]
            if stability:
                t["stability"] = jnp.mean(jnp.square(y - clean), axis=(1, 2, 3))
                total = total + weights[3] * t["stability"]
            return total.mean(), ({k: v.mean() for k, v in t.items()}, nnx.split(net, nnx.Param, ...)[2])

        (loss, (terms, state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), state, opt_state), {"loss": loss, **terms}

    return step, optimizer


def train_fast_style(style_image: ArrayLike, content: ImageSource | None = None, config: FastStyleConfig = FastStyleConfig(),
                     *, style_name: str | None = None, loss_model: Model | None = None,
                     checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                     stop_after_steps: int | None = None) -> FastStyleResult:
    """Train a transformer network to render images in the style of ``style_image`` (Johnson et al. 2016).

    Args:
      style_image: ``(H, W, 3)`` in [0, 1].
      content: training images (default: augmented crops of the bundled photos at ``config.size``).
      config: architecture, loss weights and optimisation (Adam); see :class:`FastStyleConfig`.
      style_name: a name recorded with the checkpoint (the style image's fingerprint is always recorded).
      loss_model: the network whose features define the losses (default SqueezeNet 1.1).
      checkpoint_dir: orbax checkpoints go here; a run finding one resumes from it (and refuses one of
        another architecture, style or loss network with a :class:`CheckpointError`).
      stop_after_steps: end early at this global step (checkpointed), e.g. to resume later.

    Returns:
      A :class:`FastStyleResult`; ``result.network(images)`` stylises.
    """
    check_config(config)
    content = content_images(size=config.size, seed=config.seed) if content is None else content
    if content.size != config.size:
        raise JaxvizError(f"the content images are {content.size} px crops but config.size is {config.size}; make them agree.")
    losses = perceptual_losses(style_image, loss_model=loss_model, size=config.size, style_size=config.style_size)
    graphdef, params, state = nnx.split(transformer(config), nnx.Param, ...)
    step, optimizer = _train_step(graphdef, config.learning_rate, config.stability_weight > 0)
    weights = jnp.asarray([config.style_weight, config.content_weight, config.tv_weight, config.stability_weight], jnp.float32)
    style = style_fingerprint(style_image, style_name)
    meta = {**config.architecture(), "style": style, "loss_model": losses.ext.model.name, "config": config._asdict()}
    expect = {k: meta[k] for k in ("network", "width", "residual_blocks", "norm", "upsampling", "style", "loss_model")}
    checkpointer = Checkpointer(Path(checkpoint_dir)) if checkpoint_dir is not None else None
    base = jax.random.key(config.seed + 1)

    def batches(i):
        return jnp.asarray(content.batch(i, config.batch_size)), jax.random.fold_in(base, i), losses, weights, jnp.float32(config.noise_std)

    try:
        run = run_loop(step, (params, state, optimizer.init(params)), batches,
                       steps=config.steps, checkpointer=checkpointer, meta=meta, expect=expect, desc=f"fast style {style}",
                       progress=progress, stop_after_steps=stop_after_steps)
    finally:
        if checkpointer is not None:
            checkpointer.close()
    params, state, _ = run.state
    return FastStyleResult(FastStyle(graphdef, params, state, config, style), run.history, run.step, run.resumed_from, run.seconds)


def load_fast_style(checkpoint_dir: str | os.PathLike) -> FastStyle:
    """The transformer network saved by :func:`train_fast_style` in ``checkpoint_dir`` (its latest step)."""
    with latest_checkpoint(checkpoint_dir, "train one with `jaxviz fast-style train`.") as (checkpointer, step, meta):
        if meta.get("network") != NETWORK or "config" not in meta:
            raise CheckpointError(f"{checkpoint_dir} holds a {meta.get('network', 'different')!r} checkpoint, not a fast-style transformer network.")
        config = FastStyleConfig(**meta["config"])
        graphdef, params, state = nnx.split(transformer(config), nnx.Param, ...)
        optimizer = optax.adam(config.learning_rate)
        (params, state, _), _ = checkpointer.restore((params, state, optimizer.init(params)), step=step, expect={"network": NETWORK})
    return FastStyle(graphdef, params, state, config, meta["style"])


def noise_sensitivity(fast: FastStyle, images: ArrayLike, *, std: float = 0.04, key: jax.Array | None = None) -> float:
    """Mean absolute change of the output (pixels in [0, 1]) when Gaussian noise of ``std`` is added to the input.

    The stability the lecture asks of a stylisation network ("add noise so it is robust to noise"):
    lower is steadier, e.g. from frame to frame of a video.
    """
    x = jnp.asarray(_common.as_batch(images, "images"))
    key = jax.random.key(0) if key is None else key
    noisy = jnp.clip(x + std * jax.random.normal(key, x.shape), 0, 1)
    return float(jnp.abs(stylise(fast, noisy) - stylise(fast, x)).mean())


class Comparison(NamedTuple):
    """Feed-forward stylisation against optimising the same objective (Gatys et al.) for the same image."""

    feedforward_ms: float  # steady-state time of one feed-forward pass (median of ``repeats`` calls)
    optimisation_s: float  # steady-state time of the optimisation (its second run; compile apart)
    optimisation_compile_s: float  # the first run's extra time: tracing and compiling
    speedup: float  # optimisation_s / feed-forward time
    feedforward: dict[str, float]  # style, content, tv terms and the weighted objective of the feed-forward image
    optimised: dict[str, float]  # the same for the optimised image
    steps: int
    images: tuple[np.ndarray, np.ndarray]  # feed-forward and optimised image


def compare_with_optimisation(fast: FastStyle, losses: Losses, content: ArrayLike, *, steps: int = 100,
                              repeats: int = 5) -> Comparison:
    """Time and score ``fast`` on ``content`` against ``steps`` L-BFGS iterations on the same losses.

    The optimisation (:func:`jaxviz.style.optimize_image`, starting from the content image) minimises
    exactly the weighted objective the network was trained on, so the style and content terms of both
    images are comparable numbers (Johnson et al. 2016, Table 1 and Fig. 5).
    """
    import time

    from jaxviz.style.optimize import optimize_image

    x = jnp.asarray(_common.as_batch(content, "content image"))
    cfg = fast.config
    y = stylise(fast, x).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stylise(fast, x).block_until_ready()
        times.append(time.perf_counter() - t0)
    ff = float(np.median(times))
    target = _content_target(losses, x)
    args = {"style": losses.style, "layer_weights": losses.layer_weights, "content": target,
            "alpha": jnp.full((1,), cfg.content_weight, jnp.float32), "beta": jnp.full((1,), cfg.style_weight, jnp.float32),
            "tv_weight": jnp.full((1,), cfg.tv_weight, jnp.float32)}
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        res = optimize_image(losses.objective, losses.ext, x, args, method="lbfgs", steps=steps)
        res.image.block_until_ready()
        runs.append(time.perf_counter() - t0)

    def scores(img):
        t = {k: float(v[0]) for k, v in loss_terms(losses, img, x).items()}
        return {**t, "objective": cfg.style_weight * t["style"] + cfg.content_weight * t["content"] + cfg.tv_weight * t["tv"]}

    return Comparison(ff * 1000, runs[1], runs[0] - runs[1], runs[1] / ff, scores(y), scores(res.image), res.steps,
                      (np.asarray(y[0]), np.asarray(res.image[0])))


@jax.jit
def _content_target(losses: Losses, x):
    return losses.ext(x)[losses.objective.content_layer]
