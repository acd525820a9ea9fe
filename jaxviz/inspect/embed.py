"""2-D maps of a layer's feature space: t-SNE (van der Maaten & Hinton, JMLR 2008; scikit-learn's
implementation) and PCA, the scatter coloured by class and the image map of Karpathy's "t-SNE
visualization of CNN codes" (cnnembed), with every image snapped to its own grid cell.
"""

from __future__ import annotations

import contextlib

import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.inspect._common import check_choice, check_positive


def embed(
    features: ArrayLike,
    *,
    method: str = "tsne",
    seed: int = 0,
    perplexity: float = 30.0,
    pca_dims: int | None = 50,
    max_iter: int = 1000,
    threads: int | None = None,
) -> np.ndarray:
    """``(N, 2)`` coordinates of feature vectors ``(N, D)``.

    Args:
      method: ``"tsne"`` (scikit-learn ``TSNE``, PCA initialisation, after an optional PCA to
        ``pca_dims`` dimensions as van der Maaten recommends) or ``"pca"``.
      seed: the random state of t-SNE.
      perplexity: t-SNE's effective number of neighbours; it must be smaller than N.
      max_iter: t-SNE iterations (at least 250).
      threads: OpenMP threads for t-SNE (default: scikit-learn's choice, every core). On a busy
        machine one thread avoids oversubscription, which can cost 10x.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    check_choice("method", method, ("tsne", "pca"))
    f = np.asarray(features, np.float32)
    if f.ndim != 2:
        raise ShapeError(f"embed needs (N, D) feature vectors; got shape {f.shape}. Flatten with jaxviz.inspect.features.")
    n = len(f)
    if n < 3:
        raise ShapeError(f"embed needs at least 3 points; got {n}.")
    if method == "pca":
        return PCA(2, random_state=seed).fit_transform(f).astype(np.float32)
    if not perplexity < n:
        raise JaxvizError(f"t-SNE perplexity {perplexity} needs more points than that; got {n} points. Use perplexity < {n} (5-50 is usual) or more points.")
    if pca_dims is not None and f.shape[1] > pca_dims and n > pca_dims:
        f = PCA(pca_dims, random_state=seed).fit_transform(f)
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, learning_rate="auto", max_iter=max(int(max_iter), 250))
    with threadpool_limits(threads, user_api="openmp") if threads else contextlib.nullcontext():
        return tsne.fit_transform(f).astype(np.float32)


def image_map(images: ArrayLike, coords: ArrayLike, grid: tuple[int, int] = (20, 20)) -> np.ndarray:
    """Karpathy's t-SNE image map: each cell of a ``grid`` over the 2-D layout gets the nearest image
    not yet placed (cells visited row by row); empty cells stay white.

    Args:
      images: ``(N, H, W, C)`` pixels in [0, 1].
      coords: ``(N, 2)`` positions (from :func:`embed`).

    Returns:
      a ``(rows*H, cols*W, C)`` image.
    """
    x = np.asarray(images, np.float32)
    c = np.asarray(coords, np.float64)
    if x.ndim != 4 or c.shape != (len(x), 2):
        raise ShapeError(f"image_map needs images (N, H, W, C) and coords (N, 2); got {x.shape} and {c.shape}.")
    rows, cols = (check_positive("grid rows", grid[0]), check_positive("grid cols", grid[1]))
    c = (c - c.min(0)) / np.maximum(c.max(0) - c.min(0), 1e-12)
    gy, gx = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols, indexing="ij")
    cells = np.stack([gx.ravel(), 1.0 - gy.ravel()], axis=1)  # y up, like the scatter
    _, h, w, ch = x.shape
    out = np.ones((rows * h, cols * w, ch), np.float32)
    free = np.ones(len(x), bool)
    dist = ((cells[:, None, :] - c[None]) ** 2).sum(-1)
    for cell in range(len(cells)):
        if not free.any():
            break
        i = int(np.argmin(np.where(free, dist[cell], np.inf)))
        free[i] = False
        r, q = divmod(cell, cols)
        out[r * h : (r + 1) * h, q * w : (q + 1) * w] = x[i]
    return out
