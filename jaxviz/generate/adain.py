"""Arbitrary style transfer in real time with adaptive instance normalisation (AdaIN).

Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization"
(ICCV 2017). A frozen encoder ``f`` (the first layers of a pretrained zoo network, read through
``model.activations``), AdaIN, which gives the content features the channel-wise mean and standard
deviation of the style features, and a decoder ``g`` trained once to invert ``f``:

    T(c, s) = g(t),   t = AdaIN(f(c), f(s)) = sigma(f(s)) (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s)).

A style never seen in training costs one encoder pass. At test time (sec. 7 of the paper):

* the content-style trade-off ``t = alpha AdaIN(f(c), f(s)) + (1 - alpha) f(c)``;
* interpolation between styles ``t = sum_k w_k AdaIN(f(c), f(s_k))`` with ``sum_k w_k = 1``;
* colour preservation: the style image's colours matched to the content's first
  (:func:`jaxviz.style.match_color`, Gatys et al. 2016).

The decoder mirrors the encoder: reflect-padded 3x3 convolutions, an upsampling (resize-convolution by
default, as Huang's nearest upsampling + convolution) wherever the encoder halves the resolution, no
normalisation. It is trained with Huang's loss (eq. 8-11): the content loss
``|f(g(t)) - t|^2`` plus ``lambda`` times the distance of the channel means and standard deviations of
``f_l(g(t))`` and ``f_l(s)`` summed over the encoder layers ``l`` up to the AdaIN layer.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from jaxviz.data import photo, resize, to_rgb
from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.generate.images import content_images
from jaxviz.generate.layers import UPSAMPLINGS, ConvLayer, Upsample, check_choice
from jaxviz.models.contract import Model
from jaxviz.models.squeezenet import squeezenet
from jaxviz.models.vgg import load_hed_vgg16
from jaxviz.style._common import as_batch
from jaxviz.style.stats import feature_means, gram
from jaxviz.style.transfer import match_color, style_transfer
from jaxviz.train.checkpoints import Checkpointer, cache_dir, run_id
from jaxviz.train.loop import run_loop
from jaxviz.viz import image_grid

EPS = 1e-5  # added to the variance, as in Huang's code
# Styles seen in training (offline): the bundled textures and the least photographic colour images; the
# tour also stylises with "flower", a style the decoder never saw.
STYLE_PHOTOS = ("immunohistochemistry", "hubble_deep_field", "colorwheel", "brick", "grass", "gravel")
MIN_FEATURE_SIDE = 8  # an image must give at least 8x8 positions at the AdaIN layer for its statistics


class EncoderSpec(NamedTuple):
    """A zoo network used as AdaIN's encoder.

    Attributes:
      load: builds the pretrained :class:`~jaxviz.models.Model`.
      layer: the default AdaIN layer.
      style_layers: layers whose statistics the style loss matches, shallow to deep; those up to the
        AdaIN layer are used (Huang: relu1_1 ... relu4_1).
      pad: reflect padding added around the input so every layer's stride is exact (SqueezeNet's
        unpadded stride-2 ``conv1`` loses a pixel otherwise).
    """

    load: Callable[[], Model]
    layer: str
    style_layers: tuple[str, ...]
    pad: int


ENCODERS = {
    "squeezenet": EncoderSpec(squeezenet, "fire3", ("conv1", "fire2", "fire3", "fire4", "fire5"), 1),
    "vgg16_hed": EncoderSpec(load_hed_vgg16, "block4_conv1",
                             ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1"), 0),
}


class AdainConfig(NamedTuple):
    """How to train an AdaIN decoder.

    Attributes:
      encoder: a key of :data:`ENCODERS` (``"squeezenet"``, fast on CPU; ``"vgg16_hed"``, Huang's VGG).
      layer: the AdaIN layer (``None``: the encoder's default, ``fire3`` or ``block4_conv1``).
      upsampling: one of :data:`~jaxviz.generate.UPSAMPLINGS`.
      width: decoder channels at the AdaIN layer's resolution, halved after each upsampling (at least 16).
      size: side of the square training crops (a multiple of the encoder's stride).
      batch_size: content/style pairs per step.
      steps: training steps.
      learning_rate: Adam's step size (cosine decay to 10% over ``steps``). The defaults were measured on
        SqueezeNet ``fire3`` with a few hundred steps (2e-3 and 6e-3 ended worse than 3e-3 after 150
        steps); for ``vgg16_hed`` start lower (Huang trained VGG with 1e-4).
      style_weight: ``lambda`` of Huang's eq. 11.
      seed: seeds the decoder initialisation and the crops.
      content_folder, style_folder: folders of training images; ``None``: the bundled photos
        (:data:`~jaxviz.generate.CONTENT_PHOTOS`) and ``style_photos``.
      style_photos: bundled images used as styles when ``style_folder`` is ``None``.
      checkpoint_every: steps between checkpoints (0: every 30 s of wall time).
    """

    encoder: str = "squeezenet"
    layer: str | None = None
    upsampling: str = "resize"
    width: int = 64
    size: int = 64
    batch_size: int = 8
    steps: int = 300
    learning_rate: float = 3e-3
    style_weight: float = 1.0
    seed: int = 0
    content_folder: str | None = None
    style_folder: str | None = None
    style_photos: tuple[str, ...] = STYLE_PHOTOS
    checkpoint_every: int = 0


class Adain(NamedTuple):
    """A trained AdaIN network: what :func:`adain_stylise` needs, and how it was trained.

    Attributes:
      encoder: the frozen encoder network.
      decoder: ``(graphdef, params)`` of the NNX :class:`Decoder` (``nnx.merge(*decoder)`` rebuilds it).
      config: the :class:`AdainConfig`, ``layer`` resolved.
      style_layers: the layers of the style loss.
      stride: the AdaIN layer's stride; content sides are padded to a multiple of it.
      history: per-step ``loss``, ``content`` and ``style`` of the training steps (resumed runs included).
      steps: the global step reached; ``resumed_from``: the checkpoint step restored (``steps`` when
        everything came from the cache), or ``None``.
      seconds: wall time of training in this call.
      directory: the checkpoint folder.
    """

    encoder: Model
    decoder: tuple[Any, Any]
    config: AdainConfig
    style_layers: tuple[str, ...]
    stride: int
    history: dict[str, np.ndarray]
    steps: int
    resumed_from: int | None
    seconds: float
    directory: str


# -- AdaIN ------------------------------------------------------------------------------------
def mean_std(f: ArrayLike, eps: float = EPS) -> tuple[jax.Array, jax.Array]:
    """Channel-wise mean and standard deviation over positions, ``(B, H, W, C) -> ((B, C), (B, C))``.

    ``std = sqrt(var + eps)``, as Huang's ``calc_mean_std``.
    """
    f = jnp.asarray(f, jnp.float32)
    mu = feature_means(f)
    var = feature_means(jnp.square(f - mu[:, None, None]))
    return mu, jnp.sqrt(var + eps)


def adain(content_feat: ArrayLike, style_feat: ArrayLike, eps: float = EPS) -> jax.Array:
    """Adaptive instance normalisation (Huang & Belongie 2017, eq. 8).

    ``AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y)``, channel by channel, with the mean and
    standard deviation taken over the spatial positions of each example. The output has exactly the
    style's channel means and (for ``eps`` small against the content's variance) its standard deviations.

    Args:
      content_feat: ``(B, H, W, C)`` content features.
      style_feat: ``(B or 1, H', W', C)`` style features (any spatial size; batch 1 broadcasts).
      eps: added to both variances.

    Returns:
      ``(B, H, W, C)``.

    Raises:
      ShapeError: not 4-d, different channel counts, or batches that do not broadcast.
    """
    c, s = jnp.asarray(content_feat), jnp.asarray(style_feat)
    if c.ndim != 4 or s.ndim != 4:
        raise ShapeError(f"adain takes feature maps (B, H, W, C); got shapes {c.shape} and {s.shape}.")
    if c.shape[-1] != s.shape[-1]:
        raise ShapeError(f"content features have {c.shape[-1]} channels but style features {s.shape[-1]}; "
                         "take both from the same encoder layer.")
    if s.shape[0] not in (1, c.shape[0]):
        raise ShapeError(f"style batch {s.shape[0]} does not match content batch {c.shape[0]}; give 1 or {c.shape[0]}.")
    mu_c, sd_c = mean_std(c, eps)
    mu_s, sd_s = mean_std(s, eps)
    return _renormalise(c, mu_c, sd_c, mu_s, sd_s)


def _renormalise(f, mu_f, sd_f, mu, sd):
    return (f - mu_f[:, None, None]) / sd_f[:, None, None] * sd[:, None, None] + mu[:, None, None]


# -- encoder and decoder ----------------------------------------------------------------------
def encode(encoder: Model, x: jax.Array, layers: Sequence[str], pad: int) -> dict[str, jax.Array]:
    """``encoder.activations`` of pixels ``x`` reflect-padded by ``pad`` (so layer strides are exact)."""
    if pad:
        x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    return encoder.activations(x, layers)


class Decoder(nnx.Module):
    """The inverse of the encoder: ``ups`` stages of upsampling + 3x3 convolution, ReLUs, no normalisation.

    ``conv3x3(in -> width)``, then per stage ``Upsample(w -> w/2)``, ``conv3x3(w/2 -> w/2)``, and a last
    ``conv3x3 -> 3`` with no activation (pixels, clipped to [0, 1] only when stylising), as Huang's decoder.
    The input is divided by ``scale`` (the RMS of the encoder's features on the first training batch), so
    the convolutions start on unit-scale inputs, and the output is offset by 0.5 (mid-grey at the start).
    """

    def __init__(self, in_channels: int, ups: int, width: int = 128, upsampling: str = "resize", *, scale: float = 1.0,
                 rngs: nnx.Rngs):
        self.scale = float(scale)
        widths = [max(width >> i, 16) for i in range(ups + 1)]
        self.first = ConvLayer(in_channels, widths[0], 3, rngs=rngs)
        self.ups = nnx.List([Upsample(widths[i], widths[i + 1], upsampling, rngs=rngs) for i in range(ups)])
        self.convs = nnx.List([ConvLayer(widths[i + 1], widths[i + 1], 3, rngs=rngs) for i in range(ups)])
        self.last = ConvLayer(widths[-1], 3, 3, rngs=rngs)

    def __call__(self, t: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.first(t / self.scale))
        for up, conv in zip(self.ups, self.convs):
            h = jax.nn.relu(conv(jax.nn.relu(up(h))))
        return self.last(h) + 0.5


def _decode(graphdef, params, t):
    return nnx.merge(graphdef, params)(t)


def _spec(config: AdainConfig) -> EncoderSpec:
    if config.encoder not in ENCODERS:
        raise JaxvizError(f"unknown AdaIN encoder {config.encoder!r}; choose one of {', '.join(ENCODERS)}.")
    return ENCODERS[config.encoder]


def _style_layers(encoder: Model, spec: EncoderSpec, layer: str) -> tuple[str, ...]:
    depth = encoder.layers.index(layer)
    return tuple(n for n in spec.style_layers if encoder.layers.index(n) < depth) + (layer,)


def _stride(encoder: Model, layer: str, pad: int) -> int:
    side = 256
    shape = jax.eval_shape(lambda x: encode(encoder, x, (layer,), pad)[layer], jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)).shape
    if side % shape[1]:
        raise JaxvizError(f"{encoder.name} layer {layer!r} maps {side} px to {shape[1]}, not an integer stride; choose another layer.")
    stride = side // shape[1]
    if stride & (stride - 1):
        raise JaxvizError(f"{encoder.name} layer {layer!r} has stride {stride}; the decoder needs a power of 2.")
    return stride


def _check_config(config: AdainConfig, encoder: Model, spec: EncoderSpec) -> tuple[AdainConfig, tuple[str, ...], int, int]:
    layer = spec.layer if config.layer is None else config.layer
    encoder.check_layers([layer])
    check_choice("upsampling", config.upsampling, UPSAMPLINGS)
    stride = _stride(encoder, layer, spec.pad)
    for name in ("width", "size", "batch_size", "steps"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise JaxvizError(f"{name} must be a positive integer; got {v!r}.")
    if config.size % stride or config.size < MIN_FEATURE_SIDE * stride:
        raise JaxvizError(f"the crop size must be a multiple of {stride} (the stride of {encoder.name} {layer}) and at least "
                          f"{MIN_FEATURE_SIDE * stride} px; got {config.size}.")
    if not (config.learning_rate > 0 and config.style_weight >= 0):
        raise JaxvizError(f"learning_rate must be positive and style_weight non-negative; got {config.learning_rate}, {config.style_weight}.")
    channels = jax.eval_shape(lambda x: encode(encoder, x, (layer,), spec.pad)[layer],
                              jax.ShapeDtypeStruct((1, config.size, config.size, 3), jnp.float32)).shape[-1]
    return config._replace(layer=layer), _style_layers(encoder, spec, layer), stride, channels


# -- training ---------------------------------------------------------------------------------
def adain_losses(encoder: Model, graphdef, params, content: jax.Array, style: jax.Array, *, layer: str,
                 style_layers: tuple[str, ...], pad: int, style_weight: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Huang's training loss (eq. 11) of a decoder on a batch of content/style pairs.

    ``L_c = mean (f(g(t)) - t)^2`` with ``t = AdaIN(f(c), f(s))`` (eq. 12) and
    ``L_s = sum_l mean (mu(f_l(g(t))) - mu(f_l(s)))^2 + mean (sigma(f_l(g(t))) - sigma(f_l(s)))^2`` (eq. 13);
    returns ``(L_c + style_weight L_s, {"content": L_c, "style": L_s})``.
    """
    b = content.shape[0]
    both = encode(encoder, jnp.concatenate([content, style]), style_layers, pad)
    t = adain(both[layer][:b], both[layer][b:])
    out = encode(encoder, _decode(graphdef, params, t), style_layers, pad)
    lc = jnp.mean(jnp.square(out[layer] - t))
    ls = 0.0
    for n in style_layers:
        mu_g, sd_g = mean_std(out[n])
        mu_s, sd_s = mean_std(both[n][b:])
        ls = ls + jnp.mean(jnp.square(mu_g - mu_s)) + jnp.mean(jnp.square(sd_g - sd_s))
    return lc + style_weight * ls, {"content": lc, "style": ls}


@functools.lru_cache(maxsize=8)
def _train_step(graphdef, learning_rate: float, steps: int, **kw) -> tuple[Callable, optax.GradientTransformation]:
    """``(step, optimizer)``: Adam with cosine decay to 10%, and the step for :func:`~jaxviz.train.run_loop`.

    Memoised on the settings, so runs of the same decoder in one process (resuming, reloading) reuse
    one compiled step.
    """
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.1))

    def step(carry, batch):
        params, opt_state = carry
        content, style, encoder = batch
        (loss, terms), grads = jax.value_and_grad(
            lambda p: adain_losses(encoder, graphdef, p, content, style, **kw), has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss, **terms}

    return step, optimizer


def _identity(config: AdainConfig) -> dict[str, Any]:
    """What a checkpoint must match: the architecture (restoring onto another is refused)."""
    return {"kind": "adain", "encoder": config.encoder, "layer": config.layer, "upsampling": config.upsampling,
            "width": int(config.width)}


def _feature_scale(ckpt: Checkpointer, ident: dict, first_features: Callable[[], jax.Array]) -> float:
    """The decoder's input scale: from the checkpoint's meta, else the RMS of the first batch's features
    (3 significant digits; a pure function of the config, so a resumed run rebuilds the same decoder).

    Raises:
      CheckpointError: the checkpoint was written for another architecture (``ident``).
    """
    latest = ckpt.latest_step()
    if latest is not None:  # refuse another architecture before reading any data
        saved = ckpt.read_meta(latest)
        for key, value in ident.items():
            if saved.get(key) != value:
                raise CheckpointError(f"checkpoint {ckpt.directory} was written for {key}={saved.get(key)!r}, not {value!r}; "
                                      "use another directory or delete that folder.")
        if saved.get("feature_scale"):
            return float(saved["feature_scale"])
    return float(f"{float(jnp.sqrt(jnp.mean(jnp.square(first_features())))):.3g}")


def train_adain(config: AdainConfig = AdainConfig(), *, directory: str | os.PathLike | None = None,
                cache: str | os.PathLike | None = None, encoder: Model | None = None, progress: bool = True,
                stop_after_steps: int | None = None) -> Adain:
    """Train an AdaIN decoder (Huang & Belongie 2017) and return what :func:`adain_stylise` needs.

    Content crops come from ``config.content_folder`` (offline: augmented crops of the bundled photos),
    style crops from ``config.style_folder`` (offline: the bundled textures and photos of
    ``config.style_photos``), both through :func:`~jaxviz.generate.content_images`, a pure function of
    the step. One compiled step (Adam, encoder frozen) runs in :func:`jaxviz.train.run_loop` with a
    progress bar and orbax checkpoints; a second call with the same config resumes, or, when the run
    had finished, loads the decoder without training.

    Args:
      config: an :class:`AdainConfig`.
      directory: the checkpoint folder; default ``<cache>/checkpoints/adain-<encoder>-<layer>-<hash of config>``.
      cache: the cache root (default :func:`jaxviz.train.cache_dir`).
      encoder: the already loaded encoder network (default: ``ENCODERS[config.encoder].load()``);
        its name must be ``config.encoder``.
      progress: show a progress bar.
      stop_after_steps: stop (checkpointed) at this global step, e.g. to test resuming.

    Returns:
      An :class:`Adain`.

    Raises:
      CheckpointError: ``directory`` holds a checkpoint of another encoder, layer, upsampling or width.
      JaxvizError: a bad config; DataNotFoundError: no usable training images.
    """
    spec = _spec(config)
    encoder = spec.load() if encoder is None else encoder
    if not isinstance(encoder, Model) or encoder.name != config.encoder:
        raise JaxvizError(f"the encoder given is {getattr(encoder, 'name', type(encoder).__name__)!r} but config.encoder is "
                          f"{config.encoder!r}; pass the matching network or none.")
    config, style_layers, stride, channels = _check_config(config, encoder, spec)
    ups = stride.bit_length() - 1
    ident = _identity(config)
    recipe = {k: v for k, v in config._asdict().items() if k != "checkpoint_every"}
    if directory is None:
        directory = cache_dir(cache) / "checkpoints" / f"adain-{config.encoder}-{config.layer}-{run_id(**recipe)}"

    @functools.cache
    def sources():  # read only when a step has to run
        return (content_images(config.content_folder, size=config.size, seed=config.seed),
                content_images(config.style_folder, size=config.size, seed=config.seed + 1, photos=config.style_photos, scale=2.0))

    ckpt = Checkpointer(directory)
    try:
        scale = _feature_scale(ckpt, ident, lambda: _features(encoder, jnp.asarray(sources()[0].batch(0, config.batch_size)),
                                                              config.layer, spec.pad))
        build = functools.partial(Decoder, channels, ups, config.width, config.upsampling, scale=scale)
        graphdef = nnx.graphdef(nnx.eval_shape(lambda: build(rngs=nnx.Rngs(0))))
        params = jax.jit(lambda: nnx.state(build(rngs=nnx.Rngs(config.seed))))()  # one program, not an op per layer
        step, optimizer = _train_step(graphdef, float(config.learning_rate), int(config.steps), layer=config.layer,
                                      style_layers=style_layers, pad=spec.pad, style_weight=float(config.style_weight))

        def batches(i):
            contents, styles = sources()
            return jnp.asarray(contents.batch(i, config.batch_size)), jnp.asarray(styles.batch(i, config.batch_size)), encoder

        run = run_loop(step, (params, jax.jit(optimizer.init)(params)), batches, steps=config.steps, checkpointer=ckpt,
                       meta={**ident, "config": recipe, "style_layers": list(style_layers), "feature_scale": scale}, expect=ident,
                       desc=f"AdaIN decoder ({config.encoder} {config.layer})", progress=progress,
                       checkpoint_every=config.checkpoint_every, stop_after_steps=stop_after_steps)
    finally:
        ckpt.close()
    return Adain(encoder, (graphdef, run.state[0]), config, style_layers, stride, run.history, run.step,
                 run.resumed_from, run.seconds, str(Path(directory)))


def load_adain(directory: str | os.PathLike, *, encoder: Model | None = None) -> Adain:
    """The AdaIN network saved in a checkpoint folder written by :func:`train_adain`, as it was saved
    (an unfinished run is loaded at its last checkpoint, not trained further).

    Raises:
      CheckpointError: no checkpoint there, or one that :func:`train_adain` did not write.
    """
    if not Path(directory).is_dir():
        raise CheckpointError(f"checkpoint folder not found: {directory}")
    ckpt = Checkpointer(directory)
    try:
        step = ckpt.latest_step()
        meta = ckpt.read_meta(step) if step is not None else {}
    finally:
        ckpt.close()
    if meta.get("kind") != "adain" or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{directory} holds no AdaIN checkpoint (kind {meta.get('kind')!r}); train one with train_adain.")
    recipe = dict(meta["config"], style_photos=tuple(meta["config"]["style_photos"]))
    return train_adain(AdainConfig(**recipe), directory=directory, encoder=encoder, progress=False, stop_after_steps=step)


# -- stylising --------------------------------------------------------------------------------
def _rgb_batch(x: ArrayLike, what: str) -> np.ndarray:
    a = as_batch(x, what)
    if a.shape[-1] != 3:
        raise ShapeError(f"the {what} has {a.shape[-1]} channel(s); AdaIN's encoder takes RGB: convert with jaxviz.data.to_rgb.")
    return a


def _check_side(a: np.ndarray, trained: Adain, what: str) -> None:
    least = MIN_FEATURE_SIDE * trained.stride
    if min(a.shape[1:3]) < least:
        raise ShapeError(f"the {what} is {a.shape[1]}x{a.shape[2]}; {trained.encoder.name} {trained.config.layer} needs at least "
                         f"{least}x{least} px ({MIN_FEATURE_SIDE} positions at stride {trained.stride}); resize it with jaxviz.data.resize.")


def _style_images(styles) -> list[np.ndarray]:
    if isinstance(styles, (list, tuple)):
        if not styles:
            raise JaxvizError("give at least one style image.")
        return [_rgb_batch(s, f"style image {k}") for k, s in enumerate(styles)]
    batch = _rgb_batch(styles, "style image")
    return [batch[k:k + 1] for k in range(len(batch))]


def _style_weights(weights, k: int, b: int) -> jax.Array:
    if weights is None:
        return jnp.full((1, k), 1.0 / k, jnp.float32)
    w = np.asarray(weights, np.float32)
    w = w[None] if w.ndim == 1 else w
    if w.ndim != 2 or w.shape[1] != k or w.shape[0] not in (1, b):
        raise JaxvizError(f"weights must be {k} numbers (one per style) or a ({b}, {k}) array (one row per content image); "
                          f"got shape {np.shape(weights)}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.allclose(w.sum(axis=1), 1.0, atol=1e-4):
        raise JaxvizError(f"style weights must be non-negative and sum to 1 in each row (Huang's interpolation is a convex "
                          f"combination); got {np.round(w, 4).tolist()}. Normalise them with w / w.sum().")
    return jnp.asarray(w)


def _alphas(alpha, b: int) -> jax.Array:
    a = np.asarray(alpha, np.float32)
    a = np.full((b,), a, np.float32) if a.ndim == 0 else a
    if a.shape != (b,) or not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
        raise JaxvizError(f"alpha must be a number in [0, 1] or {b} of them (one per content image); got {alpha!r}.")
    return jnp.asarray(a)


@functools.partial(jax.jit, static_argnames=("layer", "pad"))
def _style_stats(encoder: Model, x: jax.Array, layer: str, pad: int):
    return mean_std(encode(encoder, x, (layer,), pad)[layer])


def style_statistics(trained: Adain, styles, content: ArrayLike | None = None) -> tuple[jax.Array, jax.Array]:
    """AdaIN targets of ``K`` style images: channel means and standard deviations at the AdaIN layer.

    Args:
      trained: an :class:`Adain`.
      styles: an image ``(H, W, 3)``, a batch ``(K, H, W, 3)`` or a list of images of any sizes.
      content: ``(B, H, W, 3)``: match each style's colours to each content image first (colour
        preservation); the statistics are then per content image.

    Returns:
      ``(mean, std)``, each ``(1, K, C)``, or ``(B, K, C)`` with ``content``.
    """
    images = _style_images(styles)
    for k, s in enumerate(images):
        _check_side(s, trained, f"style image {k}")
    layer, pad = trained.config.layer, ENCODERS[trained.config.encoder].pad
    per_content = [None] if content is None else list(_rgb_batch(content, "content image"))
    means, stds = [], []
    for c in per_content:
        row = [_style_stats(trained.encoder, jnp.asarray(s if c is None else match_color(s[0], c)[None]), layer, pad) for s in images]
        means.append(jnp.concatenate([m for m, _ in row]))
        stds.append(jnp.concatenate([s for _, s in row]))
    return jnp.stack(means), jnp.stack(stds)


def adain_target(content_feat: ArrayLike, means: ArrayLike, stds: ArrayLike, weights: ArrayLike, alpha: ArrayLike,
                 eps: float = EPS) -> jax.Array:
    """The decoder's input ``t = alpha sum_k w_k AdaIN(f, s_k) + (1 - alpha) f`` (Huang & Belongie 2017, sec. 7).

    The sum over styles is one AdaIN with the weighted style statistics, which is the same thing:
    ``sum_k w_k (sigma_k n + mu_k) = (sum_k w_k sigma_k) n + sum_k w_k mu_k`` for the normalised content ``n``.

    Args:
      content_feat: ``(B, H, W, C)`` content features ``f``.
      means, stds: ``(B or 1, K, C)`` channel means and standard deviations of the ``K`` styles' features.
      weights: ``(B or 1, K)`` interpolation weights (each row summing to 1 for a convex combination).
      alpha: ``(B,)`` content-style trade-off.
      eps: added to the content's variance.

    Returns:
      ``(B, H, W, C)``.
    """
    f = jnp.asarray(content_feat, jnp.float32)
    b, k = f.shape[0], jnp.shape(weights)[-1]
    w = jnp.broadcast_to(jnp.asarray(weights, jnp.float32), (b, k))
    mu = jnp.einsum("bk,bkc->bc", w, jnp.broadcast_to(jnp.asarray(means, jnp.float32), (b, k, f.shape[-1])))
    sd = jnp.einsum("bk,bkc->bc", w, jnp.broadcast_to(jnp.asarray(stds, jnp.float32), (b, k, f.shape[-1])))
    a = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), (b,))[:, None, None, None]
    return a * _renormalise(f, *mean_std(f, eps), mu, sd) + (1 - a) * f


@functools.partial(jax.jit, static_argnames=("graphdef", "layer", "pad", "stride"))
def _stylise_pass(graphdef, params, encoder, content, mean, std, weights, alpha, *, layer, pad, stride):
    b, h, w, _ = content.shape
    x = jnp.pad(content, ((0, 0), (0, -h % stride), (0, -w % stride), (0, 0)), mode="reflect")
    t = adain_target(encode(encoder, x, (layer,), pad)[layer], mean, std, weights, alpha)
    return jnp.clip(_decode(graphdef, params, t), 0.0, 1.0)[:, :h, :w]


def adain_stylise(trained: Adain, content: ArrayLike, styles, *, alpha=1.0, weights=None, preserve_color: bool = False) -> jax.Array:
    """Render ``content`` in the style of ``styles`` in one compiled feed-forward pass (Huang & Belongie 2017).

    ``t = alpha sum_k w_k AdaIN(f(c), f(s_k)) + (1 - alpha) f(c)`` (:func:`adain_target`), image
    ``= clip(g(t), 0, 1)``; the style statistics come from one encoder pass per style
    (:func:`style_statistics`). A content image whose sides are not multiples of the encoder stride
    (``trained.stride``) is reflect-padded at the bottom and right to the next multiple, stylised, and
    cropped back, so the output has the content's size.

    Args:
      trained: an :class:`Adain` from :func:`train_adain`.
      content: ``(H, W, 3)`` or ``(B, H, W, 3)`` RGB in [0, 1], at least ``8 * stride`` px on each side.
      styles: one style image ``(H', W', 3)``, a batch ``(K, H', W', 3)`` or a list of ``K`` images of any sizes.
      alpha: content-style trade-off in [0, 1] (0: the content reconstructed), a float or one per content image.
      weights: interpolation weights of the ``K`` styles, ``(K,)`` or ``(B, K)``, non-negative, each row
        summing to 1; default ``1/K`` each.
      preserve_color: match each style's colour mean and covariance to the content image first.

    Returns:
      ``(B, H, W, 3)`` stylised images in [0, 1].

    Raises:
      ShapeError: not RGB, or too small; JaxvizError: NaN pixels, bad ``alpha`` or ``weights``.
    """
    c = _rgb_batch(content, "content image")
    _check_side(c, trained, "content image")
    mean, std = style_statistics(trained, styles, c if preserve_color else None)
    w = _style_weights(weights, mean.shape[1], len(c))
    graphdef, params = trained.decoder
    return _stylise_pass(graphdef, params, trained.encoder, jnp.asarray(c), mean, std, w, _alphas(alpha, len(c)),
                         layer=trained.config.layer, pad=ENCODERS[trained.config.encoder].pad, stride=trained.stride)


def content_features(trained: Adain, images: ArrayLike) -> jax.Array:
    """The encoder's features ``f(x)`` at the AdaIN layer, ``(B, h, w, C)``."""
    x = _rgb_batch(images, "image")
    return _features(trained.encoder, jnp.asarray(x), trained.config.layer, ENCODERS[trained.config.encoder].pad)


@functools.partial(jax.jit, static_argnames=("layer", "pad"))
def _features(encoder, x, layer, pad):
    return encode(encoder, x, (layer,), pad)[layer]


def _timed(fn: Callable[[], jax.Array], repeats: int = 5) -> float:
    """Median seconds of ``fn()`` (blocked until ready) after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def style_losses(trained: Adain, images: ArrayLike, content: ArrayLike, style: ArrayLike) -> dict[str, np.ndarray]:
    """How well ``images`` match a content and a style image under the trained encoder, per image.

    * ``"mean_std"``: Huang's style loss, ``sum_l |mu_l(x) - mu_l(s)|^2 + |sigma_l(x) - sigma_l(s)|^2``
      (channel means), divided by the same sum against zero statistics (a relative error);
    * ``"gram"``: Gatys' Gram-matrix style loss, each layer's divided by its target's (as
      :class:`jaxviz.style.Objective` with ``normalize=True``), averaged over :attr:`Adain.style_layers`;
    * ``"content"``: ``mean (f(x) - f(c))^2 / mean f(c)^2`` at the AdaIN layer.
    """
    x, c, s = (_rgb_batch(a, w) for a, w in ((images, "images"), (content, "content image"), (style, "style image")))
    pad = ENCODERS[trained.config.encoder].pad
    out = _losses(trained.encoder, jnp.asarray(x), jnp.asarray(c), jnp.asarray(s), trained.style_layers, trained.config.layer, pad)
    return {k: np.asarray(v) for k, v in out.items()}


@functools.partial(jax.jit, static_argnames=("layers", "layer", "pad"))
def _losses(encoder, x, c, s, layers, layer, pad):
    fx, fs = encode(encoder, x, layers, pad), encode(encoder, s, layers, pad)
    fc = encode(encoder, c, (layer,), pad)[layer]
    ms, ms0, gr = 0.0, 0.0, 0.0
    for n in layers:
        (mx, sx), (m_s, s_s) = mean_std(fx[n]), mean_std(fs[n])
        ms = ms + jnp.mean(jnp.square(mx - m_s), axis=1) + jnp.mean(jnp.square(sx - s_s), axis=1)
        ms0 = ms0 + jnp.mean(jnp.square(m_s)) + jnp.mean(jnp.square(s_s))
        gx, gs = gram(fx[n]), gram(fs[n])
        gr = gr + jnp.mean(jnp.square(gx - gs).reshape(gx.shape[0], -1), axis=1) / jnp.mean(jnp.square(gs))
    content = jnp.mean(jnp.square(fx[layer] - fc).reshape(x.shape[0], -1), axis=1) / jnp.mean(jnp.square(fc))
    return {"mean_std": ms / ms0, "gram": gr / len(layers), "content": content}


# -- the tour's figures and numbers -----------------------------------------------------------
TOUR_QUICK = AdainConfig(size=64, batch_size=4, steps=150)
TOUR_FULL = AdainConfig(size=96, batch_size=8, steps=400)
TOUR_CONTENTS = ("chelsea", "astronaut", "rocket")
TOUR_STYLES = ("immunohistochemistry", "hubble_deep_field", "brick", "flower")


def adain_tour(quick: bool = True, seed: int = 0, cache: str | os.PathLike | None = None, *,
               compare_gatys: bool | None = None, progress: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train (or load from the cache) a SqueezeNet AdaIN decoder and make the paper's figures and numbers.

    Quick mode trains :data:`TOUR_QUICK` (64 px crops), full mode :data:`TOUR_FULL` (96 px crops);
    a rerun with the same settings loads the checkpoint instead of training. ``compare_gatys`` (default:
    full mode only: it costs two optimisations, one to compile and one timed) adds Gatys' optimised image
    (100 L-BFGS steps, same encoder and layers, equal content and style weights) to the loss and speed
    comparison.

    Returns:
      ``(figures, numbers)``: figures ``{name: (H, W, 3) array in [0, 1]}`` (``"grid"``: contents x
      styles, ``"alpha"``: the content-style trade-off, ``"interpolation"``: between two styles,
      ``"color"``: colour preservation) and numbers (training; ``final_train_loss`` is ``None`` when
      the decoder came from the cache; per style (the first two of :data:`TOUR_STYLES`) the style and
      content losses of :func:`style_losses` for the content image, the AdaIN output and Gatys'
      optimised image; milliseconds per stylised image).
    """
    config = (TOUR_QUICK if quick else TOUR_FULL)._replace(seed=seed)
    trained = train_adain(config, cache=cache, progress=progress)
    side = 128 if quick else 256
    contents = [resize(to_rgb(photo(n)), side) for n in TOUR_CONTENTS[:2 if quick else 3]]
    styles = [resize(to_rgb(photo(n)), side) for n in TOUR_STYLES]
    rows = [np.ones_like(contents[0]), *styles]
    for c in contents:
        rows += [c, *(np.asarray(adain_stylise(trained, c, s)[0]) for s in styles)]
    names = [n if n in config.style_photos else f"{n} (unseen)" for n in TOUR_STYLES]
    figures = {"grid": image_grid(rows, ncols=len(styles) + 1, labels=["content \\ style", *names, *[
        lbl for n in TOUR_CONTENTS[:len(contents)] for lbl in (n, *[""] * len(styles))]])}
    c, s1, s2 = contents[0], styles[0], styles[1]
    alphas = np.linspace(0.0, 1.0, 5)
    sweep = adain_stylise(trained, np.stack([c] * len(alphas)), s2, alpha=alphas)  # the dark style: the trade-off shows
    figures["alpha"] = image_grid([c, *np.asarray(sweep), s2], ncols=len(alphas) + 2,
                                  labels=["content", *[f"alpha {a:.2f}" for a in alphas], "style"])
    w = np.stack([1 - alphas, alphas], axis=1)
    mix = adain_stylise(trained, np.stack([c] * len(alphas)), [s1, s2], weights=w)
    figures["interpolation"] = image_grid([s1, *np.asarray(mix), s2], ncols=len(alphas) + 2,
                                          labels=[TOUR_STYLES[0], *[f"w {b:.2f}" for b in alphas], TOUR_STYLES[1]])
    plain, kept = adain_stylise(trained, c, s2)[0], adain_stylise(trained, c, s2, preserve_color=True)[0]
    figures["color"] = image_grid([c, s2, np.asarray(plain), np.asarray(kept)], ncols=4,
                                  labels=["content", "style", "AdaIN", "colour preserved"])
    numbers = {"encoder": config.encoder, "layer": trained.config.layer, "style_layers": list(trained.style_layers),
               "upsampling": config.upsampling, "crop_size": config.size, "train_steps": trained.steps,
               "train_seconds": round(trained.seconds, 2), "loaded_from_cache": trained.resumed_from == trained.steps,
               "final_train_loss": float(trained.history["loss"][-10:].mean()) if len(trained.history.get("loss", ())) else None}
    gatys_steps = 100 if (not quick if compare_gatys is None else compare_gatys) else 0
    numbers.update(_comparison(trained, c, dict(zip(TOUR_STYLES[:2], (s1, s2))), gatys_steps=gatys_steps))
    big_c, big_s = resize(to_rgb(photo(TOUR_CONTENTS[0])), 256), resize(to_rgb(photo(TOUR_STYLES[0])), 256)
    numbers["ms_per_256px_image"] = round(1000 * _timed(lambda: adain_stylise(trained, big_c, big_s)), 2)
    return figures, numbers


def _comparison(trained: Adain, c: np.ndarray, styles: Mapping[str, np.ndarray], *, gatys_steps: int) -> dict[str, Any]:
    """Style and content losses (:func:`style_losses`) of the content image, the AdaIN output and (with
    ``gatys_steps``) Gatys' optimised image (:func:`jaxviz.style.style_transfer`, same encoder and layers)
    for each style, and the time of each method on the first style."""
    out: dict[str, Any] = {"compare_side": int(c.shape[0]), "losses": {}}
    for i, (name, s) in enumerate(styles.items()):
        images = {"content_image": c[None], "adain": np.asarray(adain_stylise(trained, c, s))}
        if i == 0:
            out["adain_ms"] = round(1000 * _timed(lambda: adain_stylise(trained, c, s)), 2)
        if gatys_steps:
            def gatys():
                return style_transfer(trained.encoder, c, s, style_layer_names=trained.style_layers,
                                      content_layer_name=trained.config.layer, steps=gatys_steps, method="lbfgs").image

            images["gatys"] = np.asarray(gatys())  # the first call compiles; the second is timed, as the feed-forward pass
            if i == 0:
                t0 = time.perf_counter()
                jax.block_until_ready(gatys())
                t = time.perf_counter() - t0
                out.update(gatys_seconds=round(t, 2), gatys_lbfgs_steps=gatys_steps, speedup=round(t / (out["adain_ms"] / 1000), 1))
        losses = style_losses(trained, np.concatenate(list(images.values())), c, s)
        out["losses"][name] = {m: {k: round(float(v[j]), 4) for k, v in losses.items()} for j, m in enumerate(images)}
    return out
