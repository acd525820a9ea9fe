"""Feature-space neighbours: the training images closest to a query in a layer's feature space, next
to the closest in pixel space (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012, Fig. 4), and k-NN accuracy as a measure of how well a
layer's space separates the classes.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.inspect._common import (
    check_batch,
    check_choice,
    check_layers,
    check_positive,
    flatten_features,
    layer_activations,
    pad_batch,
    require_model,
)

METRICS = ("cosine", "l2")


@functools.partial(jax.jit, static_argnames=("layers",))
def _features(model, x, layers):
    acts = layer_activations(model, x, layers)
    return {n: flatten_features(acts[n]) for n in layers}


def layer_features(model, x, layers, *, batch_size: int = 512) -> dict[str, np.ndarray]:
    """``{layer: (N, D)}`` flattened activations of ``layers`` for pixels ``x``, every layer in one
    pass per batch of ``batch_size`` (one compiled program; a short last batch is padded)."""
    model = require_model(model)
    layers = check_layers(model, layers)
    x = check_batch(model, x)
    batch_size = min(check_positive("batch_size", batch_size), len(x))
    out: dict[str, list] = {n: [] for n in layers}
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        padded, _ = pad_batch(chunk, batch_size)
        for n, f in _features(model, padded, layers).items():
            out[n].append(np.asarray(f)[: len(chunk)])
    return {n: np.concatenate(v) for n, v in out.items()}


def features(model, x, layer: str, *, batch_size: int = 512) -> np.ndarray:
    """``(N, D)`` flattened activations of ``layer`` for pixels ``x`` (see :func:`layer_features`)."""
    return layer_features(model, x, [layer], batch_size=batch_size)[check_layers(require_model(model), layer)[0]]


def pixels(x: ArrayLike) -> np.ndarray:
    """Images ``(N, H, W, C)`` as ``(N, H*W*C)`` pixel-space feature vectors."""
    x = np.asarray(x, np.float32)
    return x.reshape(len(x), -1)


class Neighbours(NamedTuple):
    """``indices (Q, k)`` into the database, nearest first, and their ``distances (Q, k)``
    (cosine distance ``1 - cos`` or Euclidean distance)."""

    indices: np.ndarray
    distances: np.ndarray


@functools.partial(jax.jit, static_argnames=("k", "metric", "chunk"))
def _neighbours(queries, database, k, metric, chunk):
    n = database.shape[0]
    pad = -n % chunk
    db = jnp.concatenate([database, jnp.zeros((pad, database.shape[1]), database.dtype)])
    valid = jnp.arange(n + pad) < n
    if metric == "cosine":
        queries = queries / jnp.maximum(jnp.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        db = db / jnp.maximum(jnp.linalg.norm(db, axis=1, keepdims=True), 1e-12)
    q2 = jnp.sum(queries**2, axis=1)

    def body(carry, inp):
        best_d, best_i = carry
        block, ok, start = inp
        dots = queries @ block.T
        if metric == "cosine":
            d = 1.0 - dots
        else:
            d = jnp.sqrt(jnp.maximum(q2[:, None] - 2.0 * dots + jnp.sum(block**2, axis=1)[None], 0.0))
        d = jnp.where(ok[None], d, jnp.inf)
        idx = jnp.broadcast_to(start + jnp.arange(chunk)[None], d.shape)
        all_d = jnp.concatenate([best_d, d], axis=1)
        all_i = jnp.concatenate([best_i, idx], axis=1)
        neg, order = jax.lax.top_k(-all_d, k)
        return (-neg, jnp.take_along_axis(all_i, order, axis=1)), None

    q = queries.shape[0]
    init = (jnp.full((q, k), jnp.inf, jnp.float32), jnp.full((q, k), -1, jnp.int32))
    blocks = db.reshape(-1, chunk, db.shape[1])
    starts = jnp.arange(blocks.shape[0], dtype=jnp.int32) * chunk
    (d, i), _ = jax.lax.scan(body, init, (blocks, valid.reshape(-1, chunk), starts))
    return d, i


def nearest_neighbours(queries: ArrayLike, database: ArrayLike, k: int = 5, *, metric: str = "cosine", chunk_size: int = 2048) -> Neighbours:
    """The ``k`` nearest database rows of every query row, batched and streamed over the database.

    Args:
      queries: ``(Q, D)`` feature vectors (see :func:`features`, :func:`pixels`).
      database: ``(N, D)`` feature vectors.
      metric: ``"cosine"`` or ``"l2"``.
      chunk_size: database rows compared per step of a ``lax.scan``, which keeps the running top-k;
        memory is ``Q x chunk_size`` distances, whatever ``N``.
    """
    check_choice("metric", metric, METRICS)
    k = check_positive("k", k)
    q = jnp.asarray(queries, jnp.float32)
    db = jnp.asarray(database, jnp.float32)
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise ShapeError(f"queries (Q, D) and database (N, D) must be 2-D with the same D; got {q.shape} and {db.shape}.")
    if db.shape[0] == 0:
        raise ShapeError("the database is empty; pass at least one feature vector.")
    if k > db.shape[0]:
        raise JaxvizError(f"k={k} is larger than the database ({db.shape[0]} rows); use k <= {db.shape[0]}.")
    chunk = min(check_positive("chunk_size", chunk_size), db.shape[0])
    d, i = _neighbours(q, db, k, metric, chunk)
    return Neighbours(np.asarray(i), np.asarray(d))


def knn_accuracy(train: ArrayLike, y_train: ArrayLike, test: ArrayLike, y_test: ArrayLike, *, k: int = 5, metric: str = "cosine") -> float:
    """Accuracy of a ``k``-nearest-neighbour vote (ties: the nearest class among them) of ``test`` rows
    among ``train`` rows: how well a feature space groups the classes."""
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(y_train) != len(np.asarray(train)) or len(y_test) != len(np.asarray(test)):
        raise ShapeError("knn_accuracy needs one label per feature row for train and test.")
    nb = nearest_neighbours(test, train, k, metric=metric)
    labels = y_train[nb.indices]  # (Q, k), nearest first
    classes = int(max(y_train.max(), y_test.max())) + 1
    votes = np.zeros((len(labels), classes))
    np.add.at(votes, (np.arange(len(labels))[:, None], labels), 1.0 + 1e-3 * np.arange(k, 0, -1)[None])
    return float((votes.argmax(1) == y_test).mean())
