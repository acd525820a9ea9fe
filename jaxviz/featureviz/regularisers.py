"""Regularisers of feature visualisation, each switchable so their effects can be compared.

:class:`Regularisers` holds the weights (0 = off): total variation (neighbouring-pixel differences),
L1 and L2 of the image around mid-grey, a Gaussian natural-image patch prior, and a blur of the
parameters every ``blur_every`` steps. Penalties are per image ``(B,)`` and subtracted from the
objective. Together with transformation robustness (:mod:`jaxviz.featureviz.transforms`) and the
decorrelated parameterisation (:mod:`jaxviz.featureviz.param`) this is the list of Olah et al. (2017).

References:
  Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them", 2015 (TV).
  Yosinski et al., "Understanding Neural Networks Through Deep Visualization", 2015 (L2, blur).
  Zoran & Weiss, "From Learning Models of Natural Image Patches to Whole Image Restoration", 2011
  (Gaussian patch priors).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import JaxvizError

PRIOR_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")


class Regularisers(NamedTuple):
    """Weights of the regularisers (0 = off) and the blur schedule.

    Attributes:
      tv: total variation, mean ``|x[i+1, j] - x[i, j]| + |x[i, j+1] - x[i, j]|``.
      l1: mean ``|x - 0.5|``.
      l2: mean ``(x - 0.5)**2``.
      prior: the Gaussian patch prior's energy per dimension (:func:`patch_prior`).
      blur_every: blur the parameters every this many steps (0 = never).
      blur_sigma: the blur's std in pixels.
    """

    tv: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    prior: float = 0.0
    blur_every: int = 0
    blur_sigma: float = 0.5

    def check(self) -> Regularisers:
        for name in ("tv", "l1", "l2", "prior", "blur_sigma"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and np.isfinite(v)):
                raise JaxvizError(f"regulariser weight {name} must be a finite number >= 0; got {v!r}.")
        if isinstance(self.blur_every, bool) or not isinstance(self.blur_every, int) or self.blur_every < 0:
            raise JaxvizError(f"blur_every must be an integer >= 0 (0: never); got {self.blur_every!r}.")
        return self


def total_variation(x: jax.Array) -> jax.Array:
    """Anisotropic total variation per image ``(B,)``: mean absolute difference of vertical plus horizontal neighbours."""
    dy = jnp.abs(x[:, 1:] - x[:, :-1]).mean(axis=(1, 2, 3))
    dx = jnp.abs(x[:, :, 1:] - x[:, :, :-1]).mean(axis=(1, 2, 3))
    return dy + dx


def l1(x: jax.Array) -> jax.Array:
    return jnp.abs(x - 0.5).mean(axis=(1, 2, 3))


def l2(x: jax.Array) -> jax.Array:
    return jnp.square(x - 0.5).mean(axis=(1, 2, 3))


class PatchPrior(NamedTuple):
    """A Gaussian model of ``size x size`` image patches: mean and whitening filters.

    ``whitening`` is ``(size, size, C, D)`` with ``D = size * size * C`` so that one convolution maps
    every patch ``p`` to ``W^T (p - mean)``, which is standard normal for patches of the fitting images.
    """

    mean: np.ndarray  # (D,)
    whitening: np.ndarray  # (size, size, C, D)


def fit_patch_prior(images: np.ndarray, size: int = 5, ridge: float = 1e-4, max_patches: int = 200_000, seed: int = 0) -> PatchPrior:
    """Fit a Gaussian to ``size x size`` patches of ``images`` ``(N, H, W, C)`` in [0, 1].

    ``ridge`` is added to the covariance's diagonal (the smallest eigenvalues of natural patches are
    tiny; without it the prior would forbid any fine detail).
    """
    x = np.asarray(images, np.float32)
    c = x.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))  # (N, h', w', C, s, s)
    patches = np.moveaxis(windows, 3, -1).reshape(-1, size * size * c)  # ordered (dy, dx, c)
    if len(patches) > max_patches:
        patches = patches[np.random.default_rng(seed).choice(len(patches), max_patches, replace=False)]
    mean = patches.mean(axis=0)
    cov = np.cov(patches - mean, rowvar=False) + ridge * np.eye(patches.shape[1])
    evals, evecs = np.linalg.eigh(cov)
    whiten = evecs / np.sqrt(evals)[None]  # (D, D): columns map a patch to whitened coordinates
    return PatchPrior(mean.astype(np.float32), whiten.reshape(size, size, c, -1).astype(np.float32))


@functools.cache
def patch_prior(channels: int = 3, size: int = 5, resolution: int = 128) -> PatchPrior:
    """The Gaussian patch prior fitted to the bundled photos (:data:`PRIOR_PHOTOS`) resized to ``resolution`` px."""
    from jaxviz.data import photo, resize, to_grey, to_rgb

    photos = np.stack([resize(to_rgb(photo(p)), resolution) for p in PRIOR_PHOTOS])
    if channels == 1:
        photos = to_grey(photos)
    return fit_patch_prior(photos, size)


def prior_energy(prior: PatchPrior, x: jax.Array) -> jax.Array:
    """Mean negative log-likelihood (up to a constant) per patch dimension, per image ``(B,)``: 0.5 on average
    for the fitting photos with ``ridge=0`` (a little less with the ridge), far larger for noise."""
    w = jnp.asarray(prior.whitening)
    z = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    z = z - (jnp.asarray(prior.mean) @ w.reshape(-1, w.shape[-1]))[None, None, None]
    return 0.5 * jnp.square(z).mean(axis=(1, 2, 3))


def penalty(reg: Regularisers, x: jax.Array) -> jax.Array:
    """The weighted sum of the switched-on penalties for images ``x``, per image ``(B,)``."""
    total = jnp.zeros(x.shape[:1], jnp.float32)
    if reg.tv:
        total = total + reg.tv * total_variation(x)
    if reg.l1:
        total = total + reg.l1 * l1(x)
    if reg.l2:
        total = total + reg.l2 * l2(x)
    if reg.prior:
        total = total + reg.prior * prior_energy(patch_prior(x.shape[-1]), x)
    return total
