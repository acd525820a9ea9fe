"""Gradient-based saliency: gradient, gradient x input, SmoothGrad, Integrated Gradients, Blur IG.

References:
  Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", 2014.
  Shrikumar et al., "Not Just a Black Box" (gradient x input), 2016.
  Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017.
  Adebayo et al., "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter
  Values" (VarGrad), 2018.
  Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks" (IG), 2017.
  Xu et al., "Attribution in Scale and Space" (Blur IG), CVPR 2020.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.attribution import _common as C
from jaxviz.errors import JaxvizError, ShapeError

IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "trapezoid", "gauss_legendre")
BASELINES = ("black", "white", "blur", "uniform")


@C.compiled
def gradient(model_or_fn, x: ArrayLike, target: ArrayLike, *, reduce: str | None = None) -> jax.Array:
    """Gradient of the target logit with respect to the input pixels (Simonyan et al. 2014).

    Args:
      model_or_fn: a :class:`~jaxviz.models.contract.Model` or a callable ``f(x) -> (B, classes)``.
      x: ``(B, H, W, C)`` pixels.
      target: an int or ``(B,)`` class indices.
      reduce: ``None`` signed ``(B, H, W, C)``; ``"abs"``; ``"max_abs"`` the saliency map of Simonyan et
        al. (max of ``|grad|`` over channels) and ``"sum_abs"``/``"sum"``, all ``(B, H, W)``.

    Example:
      >>> sal = jax.jit(gradient, static_argnames="reduce")(model, x, 3, reduce="max_abs")
    """
    f, x, t = C.prepare(model_or_fn, x, target)
    return C.reduce_channels(C.target_grad(f, x, t), reduce)


@C.compiled
def gradient_x_input(model_or_fn, x: ArrayLike, target: ArrayLike, *, reduce: str | None = None) -> jax.Array:
    """Gradient times input (Shrikumar et al. 2016); ``reduce`` as in :func:`gradient`."""
    f, x, t = C.prepare(model_or_fn, x, target)
    return C.reduce_channels(C.target_grad(f, x, t) * x, reduce)


@C.compiled
def smoothgrad(
    attr_fn: Callable[..., jax.Array],
    model_or_fn,
    x: ArrayLike,
    target: ArrayLike,
    *,
    key: jax.Array,
    samples: int = 25,
    noise_level: float = 0.15,
    sigma: float | ArrayLike | None = None,
    mode: str = "smoothgrad",
    chunk_size: int | str | None = "auto",
    **attr_kwargs: Any,
) -> jax.Array:
    """SmoothGrad around any attribution function (Smilkov et al. 2017; VarGrad: Adebayo et al. 2018).

    Averages ``attr_fn(model_or_fn, x + noise, target, **attr_kwargs)`` over ``samples`` Gaussian noise
    draws. Noise std is ``noise_level * (max(x) - min(x))`` per example (the paper's ``sigma / range``;
    the seed's ``range / 4`` is ``noise_level=0.25``) unless an absolute ``sigma`` is given.

    Args:
      attr_fn: e.g. :func:`gradient`, :func:`integrated_gradients`, :func:`guided_backprop`.
      mode: ``"smoothgrad"`` (mean), ``"smoothgrad_sq"`` (mean of squares) or ``"vargrad"`` (variance).
      key: a ``jax.random.key``; each draw gets its own split (an ``attr_fn`` taking ``key`` gets one
        per chunk of draws).
      chunk_size: noise draws evaluated per call, as one batch of ``chunk_size`` x batch images (the memory
        bound); the copies of an example are adjacent in it, so a sharded batch stays sharded. ``"auto"``:
        about one 16-image batch per call on CPU, 8 draws on accelerators; ``None``: all at once.

    Example:
      >>> sg = smoothgrad(gradient, model, x, target, key=jax.random.key(0), samples=25)
    """
    C.check_choice("mode", mode, ("smoothgrad", "smoothgrad_sq", "vargrad"))
    samples = C.check_positive("samples", samples)
    if key is None:
        raise JaxvizError("smoothgrad needs an explicit key: key=jax.random.key(0).")
    _, x, t = C.prepare(model_or_fn, x, target)
    if sigma is None:
        if not isinstance(noise_level, (int, float)) and not isinstance(noise_level, jax.Array):
            raise JaxvizError(f"noise_level must be a number; got {noise_level!r}.")
        span = x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))
        std = (noise_level * span)[:, None, None, None]
    else:
        std = jnp.asarray(sigma, jnp.float32)
        try:
            std = jnp.broadcast_to(std, x.shape)
        except ValueError:
            raise ShapeError(f"sigma of shape {std.shape} does not broadcast to the input shape {x.shape}.") from None
    keys = jax.random.split(key, samples)
    pass_key = C.accepts_key(attr_fn) and "key" not in attr_kwargs
    chunk_size = C.auto_chunk(chunk_size, x.shape[0], samples, 8)

    def draws(ks):  # (c,) keys -> (B, c, ...) attributions of c noisy copies of the batch
        pairs = jax.vmap(jax.random.split)(ks)
        kn, ka = pairs[:, 0], pairs[:, 1]
        noise = jax.vmap(lambda k: jax.random.normal(k, x.shape, x.dtype))(kn)
        xb, tb = C.fold(x[None] + std[None] * noise, t)
        extra = {"key": ka[0]} if pass_key else {}
        a = attr_fn(model_or_fn, xb, tb, **extra, **attr_kwargs)
        return C.unfold(a[0] if isinstance(a, tuple) else a, len(ks))

    if mode == "smoothgrad":
        return C.chunked_sum(draws, keys, chunk_size) / samples
    # Moments about the first draw, so the variance does not cancel catastrophically in float32.
    a0 = draws(keys[:1])[:, 0]

    def centred(ks):
        d = draws(ks) - a0[:, None]
        return d, d * d

    s, sq = C.chunked_sum(centred, keys, chunk_size)
    mean_d = s / samples
    mean = a0 + mean_d
    if mode == "smoothgrad_sq":
        return sq / samples - mean_d * mean_d + mean * mean
    return jnp.maximum(sq / samples - mean_d * mean_d, 0.0)


# -- Integrated Gradients --------------------------------------------------------------------------


def path_nodes(steps: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes ``alpha`` in [0, 1] and weights summing to 1 for the IG path integral."""
    steps = C.check_positive("steps", steps)
    C.check_choice("method", method, IG_METHODS)
    k = np.arange(steps, dtype=np.float64)
    if method == "riemann_left":
        a, w = k / steps, np.full(steps, 1.0 / steps)
    elif method == "riemann_right":
        a, w = (k + 1) / steps, np.full(steps, 1.0 / steps)
    elif method == "riemann_middle":
        a, w = (k + 0.5) / steps, np.full(steps, 1.0 / steps)
    elif method == "trapezoid":
        if steps < 2:
            raise JaxvizError("the trapezoid rule needs steps >= 2.")
        a = k / (steps - 1)
        w = np.full(steps, 1.0 / (steps - 1))
        w[[0, -1]] *= 0.5
    else:
        t, w = np.polynomial.legendre.leggauss(steps)
        a, w = (t + 1) / 2, w / 2
    return a.astype(np.float32), w.astype(np.float32)


def gaussian_blur(x: jax.Array, sigma: ArrayLike) -> jax.Array:
    """Gaussian blur of ``(B, H, W, C)`` images with std ``sigma`` pixels (a traced scalar is fine).

    Done as two dense ``(H, H)``/``(W, W)`` matrix products with rows renormalised at the borders, so any
    sigma (0 = identity, larger than the image) works with static shapes, and ``d blur / d sigma`` exists.
    """
    sigma = jnp.maximum(jnp.asarray(sigma, jnp.float32), 1e-4)

    def mat(n):
        i = jnp.arange(n, dtype=jnp.float32)
        g = jnp.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
        return g / g.sum(axis=1, keepdims=True)

    return jnp.einsum("hk,bkwc,vw->bhvc", mat(x.shape[1]), x, mat(x.shape[2]))


def make_baseline(x: jax.Array, baseline, key: jax.Array | None = None, blur_sigma: float | None = None) -> jax.Array:
    """A baseline for ``x``: an array (broadcast to ``x``) or ``"black"``, ``"white"``, ``"blur"``, ``"uniform"``."""
    if isinstance(baseline, str):
        C.check_choice("baseline", baseline, BASELINES)
        if baseline == "black":
            return jnp.zeros_like(x)
        if baseline == "white":
            return jnp.ones_like(x)
        if baseline == "blur":
            s = 0.1 * max(x.shape[1:3]) if blur_sigma is None else blur_sigma
            return gaussian_blur(x, s)
        if key is None:
            raise JaxvizError('baseline="uniform" needs an explicit key: key=jax.random.key(0).')
        return jax.random.uniform(key, x.shape, x.dtype)
    b = jnp.asarray(baseline, jnp.float32)
    try:
        return jnp.broadcast_to(b, x.shape)
    except ValueError:
        raise ShapeError(f"baseline of shape {b.shape} does not broadcast to the input shape {x.shape}.") from None


@C.compiled
def integrated_gradients(
    model_or_fn,
    x: ArrayLike,
    target: ArrayLike,
    *,
    baseline: str | ArrayLike = "black",
    steps: int = 50,
    method: str = "gauss_legendre",
    chunk_size: int | str | None = "auto",
    blur_sigma: float | None = None,
    return_error: bool = False,
    key: jax.Array | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Integrated Gradients (Sundararajan et al. 2017): ``(x - x') * int_0^1 grad f(x' + a (x - x')) da``.

    Args:
      baseline: an array broadcastable to ``x``, or ``"black"`` (zeros), ``"white"``, ``"blur"``
        (Gaussian blur of ``x`` with ``blur_sigma``, default a tenth of the image side) or
        ``"uniform"`` (noise in [0, 1], needs ``key``).
      steps: path points; ``method`` picks them: ``riemann_left``/``right``/``middle``, ``trapezoid`` or
        ``gauss_legendre`` (:func:`numpy.polynomial.legendre.leggauss`, exact for smooth paths).
      chunk_size: path points per call, one batch of ``chunk_size`` x batch images (the memory bound);
        ``"auto"``: about one 16-image batch per call on CPU, 16 points on accelerators.
      return_error: also return the completeness error ``sum(attr) - (f(x) - f(x'))`` per example.

    Returns:
      ``(B, H, W, C)`` attributions, or ``(attributions, error)`` with ``return_error=True``.
    """
    f, x, t = C.prepare(model_or_fn, x, target)
    alphas, weights = path_nodes(steps, method)
    base = make_baseline(x, baseline, key, blur_sigma)
    diff = x - base

    def path_grads(a):  # (c,) path positions -> (B, c, ...) gradients
        xb, tb = C.fold(base[None] + a[:, None, None, None, None] * diff[None], t)
        return C.unfold(C.target_grad(f, xb, tb), len(a))

    chunk_size = C.auto_chunk(chunk_size, x.shape[0], len(alphas), 16)
    attr = diff * C.chunked_sum(path_grads, jnp.asarray(alphas), chunk_size, weights)
    if not return_error:
        return attr
    return attr, completeness_error(f, x, base, t, attr)


def completeness_error(f, x: jax.Array, baseline: jax.Array, t: jax.Array, attr: jax.Array) -> jax.Array:
    """``sum(attr) - (f(x)_t - f(baseline)_t)`` per example."""
    fx, fb = C.select(f(x), t), C.select(f(baseline), t)
    return attr.sum(axis=(1, 2, 3)) - (fx - fb)


@C.compiled
def blur_integrated_gradients(
    model_or_fn,
    x: ArrayLike,
    target: ArrayLike,
    *,
    max_sigma: float = 50.0,
    steps: int = 100,
    chunk_size: int | str | None = "auto",
    return_error: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Blur IG (Xu et al. 2020): integrate along the path from ``blur(x, max_sigma)`` to ``x``.

    The path ``x(s) = blur(x, s)`` runs over s from ``max_sigma`` to 0; ``dx/ds`` is exact (forward-mode
    through :func:`gaussian_blur`) and the s-axis is sampled at ``steps`` midpoints. The completeness
    error, if asked for, is relative to the baseline ``blur(x, max_sigma)``. ``chunk_size`` as in
    :func:`integrated_gradients`.
    """
    f, x, t = C.prepare(model_or_fn, x, target)
    steps = C.check_positive("steps", steps)
    if not max_sigma > 0:
        raise JaxvizError(f"max_sigma must be positive; got {max_sigma!r}.")
    ds = max_sigma / steps
    sigmas = jnp.asarray((np.arange(steps) + 0.5) * ds, jnp.float32)

    def path_terms(s):  # (c,) blur levels -> (B, c, ...) terms of the path integral
        xs, dxds = jax.vmap(lambda si: jax.jvp(lambda ss: gaussian_blur(x, ss), (si,), (jnp.ones_like(si),)))(s)
        xb, tb = C.fold(xs, t)
        return -ds * C.unfold(C.target_grad(f, xb, tb), len(s)) * jnp.moveaxis(dxds, 0, 1)

    attr = C.chunked_sum(path_terms, sigmas, C.auto_chunk(chunk_size, x.shape[0], steps, 16))
    if not return_error:
        return attr
    return attr, completeness_error(f, x, gaussian_blur(x, max_sigma), t, attr)
