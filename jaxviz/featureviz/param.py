"""Image parameterisations: what the optimiser changes, and how it becomes pixels in [0, 1].

A :class:`Param` maps unconstrained parameters to a batch of images ``(B, H, W, C)``:

1. spatial signal: the parameters themselves (``fourier=False``), or the inverse real FFT of a
   spectrum scaled by ``1 / f**decay_power`` so that every frequency band starts with similar energy
   (natural images have a ~1/f amplitude spectrum, so gradient steps no longer favour high frequencies);
2. colour: for RGB, multiplied by the square root of ImageNet's colour correlation matrix
   (``decorrelate=True``), so the optimiser moves along decorrelated colour axes;
3. range: a sigmoid, or a clip to [0, 1] with a straight-through gradient.

References:
  Olah, Mordvintsev & Schubert, "Feature Visualization", Distill, 2017 (the preconditioning section).
  Mordvintsev, Pezzotti, Schubert & Olah, "Differentiable Image Parameterizations", Distill, 2018.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.attribution.gradients import gaussian_blur
from jaxviz.errors import JaxvizError, ShapeError

# Square root of the colour correlation matrix Lucid measured on ImageNet (rows: R, G, B), scaled so
# its largest column has unit norm: a unit step in decorrelated space moves colour by at most 1.
_COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float64)
COLOUR_CORRELATION_SQRT = (_COLOUR_SQRT / np.linalg.norm(_COLOUR_SQRT, axis=0).max()).astype(np.float32)
# Lucid divides the inverse FFT by 4 so that the initial spectrum's images have a modest contrast.
_FOURIER_GAIN = 0.25
SQUASHES = ("sigmoid", "clip")
_EPS = 1e-4


def fft_frequencies(h: int, w: int) -> np.ndarray:
    """Radial frequency ``sqrt(fy**2 + fx**2)`` (cycles per pixel) of each ``rfft2`` coefficient, ``(h, w // 2 + 1)``."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fy * fy + fx * fx)


class Param(NamedTuple):
    """A parameterisation of a batch of ``(H, W, C)`` images (hashable: pass it as a static setting).

    Attributes:
      shape: ``(B, H, W, C)`` of the rendered batch.
      fourier: optimise a real-FFT spectrum instead of pixels.
      decay_power: exponent of the ``1 / f**decay_power`` spectrum scaling (Lucid: 1).
      decorrelate: use the decorrelated colour space (RGB only; ignored for grey images).
      squash: ``"sigmoid"`` or ``"clip"`` (to [0, 1], straight-through gradient).
      sd: standard deviation of the random initial parameters. Lucid's 0.01 starts from flat grey; a unit
        that is zero there (after a ReLU) gets no gradient and stays dead, so raise ``sd`` (e.g. 0.5) for those.
    """

    shape: tuple[int, int, int, int]
    fourier: bool = True
    decay_power: float = 1.0
    decorrelate: bool = True
    squash: str = "sigmoid"
    sd: float = 0.01

    @property
    def _decorrelated(self) -> bool:
        return self.decorrelate and self.shape[-1] == 3

    @property
    def _scale(self) -> np.ndarray:
        _, h, w, _ = self.shape
        scale = 1.0 / np.maximum(fft_frequencies(h, w), 1.0 / max(h, w)) ** self.decay_power
        return (scale * np.sqrt(h * w)).astype(np.float32)  # sqrt(HW): irfft2's 1/HW normalisation made unitary

    @property
    def params_shape(self) -> tuple[int, ...]:
        b, h, w, c = self.shape
        return (2, b, c, h, w // 2 + 1) if self.fourier else (b, h, w, c)

    def init(self, key: jax.Array) -> jax.Array:
        """Random initial parameters: normal with std ``sd``, a deterministic function of ``key``.

        Drawn by numpy seeded with the key's bits: XLA compiles a new random-number program for every
        parameter shape, which costs seconds on a CPU, longer than many renders.
        """
        seed = np.asarray(jax.random.key_data(key)).ravel()
        noise = np.random.default_rng(seed).standard_normal(self.params_shape, np.float32)
        return jnp.asarray(self.sd * noise)

    def __call__(self, params: jax.Array) -> jax.Array:
        """Images ``(B, H, W, C)`` in [0, 1] for ``params``."""
        _, h, w, _ = self.shape
        t = params
        if self.fourier:
            spectrum = jax.lax.complex(params[0], params[1]) * self._scale[None, None]
            t = jnp.moveaxis(jnp.fft.irfft2(spectrum, s=(h, w)), 1, -1) * _FOURIER_GAIN
        if self._decorrelated:
            t = t @ jnp.asarray(COLOUR_CORRELATION_SQRT.T)
        if self.squash == "sigmoid":
            return jax.nn.sigmoid(t)
        x = t + 0.5
        return x + jax.lax.stop_gradient(jnp.clip(x, 0.0, 1.0) - x)

    def encode(self, images: ArrayLike) -> jax.Array:
        """Parameters whose images are ``images`` (``(B, H, W, C)`` in [0, 1]), e.g. to start from a photo."""
        x = jnp.asarray(images, jnp.float32)
        if x.shape != self.shape:
            raise ShapeError(f"encode expects images of shape {self.shape}; got {x.shape}. Resize with jaxviz.data.resize.")
        t = jnp.log(jnp.clip(x, _EPS, 1 - _EPS)) - jnp.log1p(-jnp.clip(x, _EPS, 1 - _EPS)) if self.squash == "sigmoid" else x - 0.5
        if self._decorrelated:
            t = t @ jnp.asarray(np.linalg.inv(COLOUR_CORRELATION_SQRT.T.astype(np.float64)).astype(np.float32))
        if not self.fourier:
            return t
        spectrum = jnp.fft.rfft2(jnp.moveaxis(t, -1, 1) / _FOURIER_GAIN) / self._scale[None, None]
        return jnp.stack([spectrum.real, spectrum.imag])

    def blur(self, params: jax.Array, sigma: float) -> jax.Array:
        """Parameters of the images blurred by a Gaussian of std ``sigma`` pixels (before the squash).

        Pixels: a separable Gaussian filter. Fourier: the spectrum times the Gaussian's transfer
        function ``exp(-2 pi^2 sigma^2 f^2)`` (a circular blur).
        """
        if not self.fourier:
            return gaussian_blur(params, sigma)
        _, h, w, _ = self.shape
        gain = np.exp(-2 * np.pi**2 * sigma**2 * fft_frequencies(h, w) ** 2).astype(np.float32)
        return params * gain[None, None, None]


def image_param(
    size: int | tuple[int, int],
    batch: int = 1,
    channels: int = 3,
    *,
    fourier: bool = True,
    decay_power: float = 1.0,
    decorrelate: bool = True,
    squash: str = "sigmoid",
    sd: float = 0.01,
) -> Param:
    """A :class:`Param` for ``batch`` images of ``size`` (int: square) with ``channels`` (1 or 3).

    The defaults are Lucid's: Fourier with ``1/f`` scaling, decorrelated colour, sigmoid. Raw pixels:
    ``image_param(size, fourier=False, decorrelate=False)``.
    """
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    for name, v in (("height", h), ("width", w), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise JaxvizError(f"image {name} must be a positive integer; got {v!r}.")
    if channels not in (1, 3):
        raise ShapeError(f"channels must be 1 (grey) or 3 (RGB); got {channels!r}.")
    if squash not in SQUASHES:
        raise JaxvizError(f"unknown squash {squash!r}; choose one of {', '.join(map(repr, SQUASHES))}.")
    if not sd > 0 or not decay_power >= 0:
        raise JaxvizError(f"sd must be > 0 and decay_power >= 0; got sd={sd!r}, decay_power={decay_power!r}.")
    return Param((int(batch), int(h), int(w), int(channels)), bool(fourier), float(decay_power), bool(decorrelate), squash, float(sd))


def pixel_param(size: int | tuple[int, int], batch: int = 1, channels: int = 3, *, squash: str = "sigmoid", sd: float = 0.01) -> Param:
    """Raw pixels, no colour decorrelation: the unregularised baseline of Simonyan et al. (2014)."""
    return image_param(size, batch, channels, fourier=False, decorrelate=False, squash=squash, sd=sd)
