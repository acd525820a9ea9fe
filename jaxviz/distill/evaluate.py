"""Evaluating distilled sets, the baselines of Wang et al. (2018, Table 1), and the ``.npz`` artifact.

Protocol (a), the paper's: apply the learned steps and step sizes to the fixed initialisation, or to
fresh random initialisations (mean and std over them). Protocol (b), the common one since: train a
fresh network on the distilled images with SGD and momentum for a number of epochs.

Baselines start from real images (random per class, or k-means centres per class) with the same
number of images and steps; :func:`jaxviz.distill.distill` with ``learn_images=False`` then learns
only their step sizes, so they are trained exactly like the distilled set.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.data import Dataset
from jaxviz.distill.core import DistillConfig, Distilled, DistillResult, inner_train, over_networks, soft_cross_entropy
from jaxviz.distill.pools import network_fingerprints, pool_params
from jaxviz.errors import JaxvizError
from jaxviz.models.contract import Model


class Evaluation(NamedTuple):
    mean: float  # test accuracy, mean over initialisations
    std: float
    accuracies: np.ndarray  # one per initialisation


def _accuracy(model: Model, params: Any, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> jax.Array:
    """Accuracy of each of a batch of ``params`` (leading axis) on ``(x, y)``, in chunks of ``batch`` images."""
    correct = 0
    for i in range(0, len(x), batch):
        correct = correct + _correct(model, params, jnp.asarray(x[i:i + batch]), jnp.asarray(y[i:i + batch]))
    return correct / len(x)


@jax.jit
def _correct(model: Model, params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    logits = over_networks(model.apply, params, x)
    return jnp.sum(jnp.argmax(logits, -1) == y[None], axis=-1)


@jax.jit
def _trained(model: Model, inits: Any, d: Distilled) -> Any:
    return over_networks(lambda p: inner_train(model, p, d.x, d.targets(model.num_classes), d.lrs, remat=False), inits)


def evaluate(model: Model, result: DistillResult, x: np.ndarray, y: np.ndarray, *, num_inits: int = 10,
             key: jax.Array | None = None) -> Evaluation:
    """Protocol (a): test accuracy after the learned inner run from the fixed init, or from ``num_inits`` fresh ones.

    Args:
      model: the architecture the set was distilled for.
      result: a :class:`DistillResult` (its ``init_params`` decide fixed vs random).
      x, y: test images and labels.
      num_inits: fresh initialisations for a random-init result (the paper uses 200; >= 10 here).
      key: where the fresh initialisations come from (default ``key(12345)``, unseen in distillation).
    """
    if result.pool is not None:
        raise JaxvizError("this set was distilled on a pool of pretrained networks; evaluate it on networks held out of that "
                          "pool: jaxviz.distill.evaluate_pool(model, result, held_out, x, y).")
    if result.init_params is not None:
        inits = jax.tree.map(lambda a: a[None], result.init_params)
    else:
        key = jax.random.key(12345) if key is None else key
        inits = jax.vmap(model.init)(jax.random.split(key, num_inits))
    accs = np.asarray(_accuracy(model, _trained(model, inits, result.distilled), x, y))
    return Evaluation(float(accs.mean()), float(accs.std()), accs)


def held_out_params(model: Model, result: DistillResult, held_out: Any) -> Any:
    """The stacked parameters of ``held_out`` (a :class:`~jaxviz.distill.Pool` or pytree), none of them distilled on.

    Raises:
      JaxvizError: ``result`` was not distilled on a pool, or a held-out network is one of that pool's.
    """
    if result.pool is None:
        raise JaxvizError("held-out networks evaluate a set distilled with init='pool'; this one used "
                          f"init={result.config.init!r} (use jaxviz.distill.evaluate).")
    params = pool_params(model, held_out)
    used = {f: i for i, f in enumerate(network_fingerprints(result.pool))}
    shared = [(i, used[f]) for i, f in enumerate(network_fingerprints(params)) if f in used]
    if shared:
        raise JaxvizError(f"held-out network(s) {[i for i, _ in shared]} are network(s) {[j for _, j in shared]} of the pool the set was "
                          "distilled on, so they measure nothing unseen; keep them out with jaxviz.distill.split_pool.")
    return params


def evaluate_pool(model: Model, result: DistillResult, held_out: Any, x: np.ndarray, y: np.ndarray) -> Evaluation:
    """Protocol (a) for a pool-distilled set: test accuracy after the learned inner run from each held-out network.

    Args:
      model: the architecture.
      result: a :class:`DistillResult` of ``init="pool"``.
      held_out: pretrained networks not in ``result.pool`` (:func:`~jaxviz.distill.split_pool`).
      x, y: test images and labels.
    """
    params = held_out_params(model, result, held_out)
    accs = np.asarray(_accuracy(model, _trained(model, params, result.distilled), x, y))
    return Evaluation(float(accs.mean()), float(accs.std()), accs)


@functools.partial(jax.jit, static_argnames="epochs")
def _fit(model: Model, inits: Any, xs: jax.Array, ts: jax.Array, lr: jax.Array, momentum: jax.Array, epochs: int) -> Any:
    """Full-batch SGD with momentum on ``(xs, ts)`` for ``epochs`` steps from each of ``inits`` (:func:`over_networks`)."""
    opt = optax.sgd(lr, momentum)

    def one(p):
        def step(c, _):
            p, s = c
            g = jax.grad(lambda q: soft_cross_entropy(model.apply(q, xs), ts))(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (p, opt.init(p)), None, length=epochs)[0][0]

    return over_networks(one, inits)


def train_fresh(model: Model, x: jax.Array, targets: jax.Array, x_test: np.ndarray, y_test: np.ndarray, *, epochs: int = 300,
                lr: float = 0.01, momentum: float = 0.9, num_inits: int = 3, key: jax.Array | None = None) -> Evaluation:
    """Protocol (b): train fresh networks on all distilled images as one batch with SGD + momentum.

    Args:
      x: distilled images, any leading shape ``(..., H, W, C)`` (flattened to one batch).
      targets: matching target distributions ``(..., classes)`` (``Distilled.targets``).
      epochs: full-batch SGD steps.
      num_inits: fresh initialisations trained (:func:`over_networks`); mean and std of their test accuracy.
    """
    shape = tuple(model.input_shape)
    xs = jnp.asarray(x, jnp.float32).reshape(-1, *shape)
    ts = jnp.asarray(targets, jnp.float32).reshape(xs.shape[0], -1)
    key = jax.random.key(54321) if key is None else key
    params = _fit(model, jax.vmap(model.init)(jax.random.split(key, num_inits)), xs, ts, jnp.float32(lr), jnp.float32(momentum), epochs)
    accs = np.asarray(_accuracy(model, params, x_test, y_test))
    return Evaluation(float(accs.mean()), float(accs.std()), accs)


def _per_class(data: Dataset, labels: np.ndarray) -> list[np.ndarray]:
    y = np.asarray(data.y_train)
    pools = [np.flatnonzero(y == c) for c in range(int(labels.max()) + 1)]
    short = [c for c, p in enumerate(pools) if len(p) < np.sum(labels == c)]
    if short:
        raise JaxvizError(f"{data.name} has too few training images of class(es) {short} for this many images per class.")
    return pools


def random_real(data: Dataset, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Real training images of the classes ``labels`` ``(steps, n)``, drawn without replacement: the random baseline."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pools = _per_class(data, labels)
    flat = labels.reshape(-1)
    out = np.empty((flat.size, *data.x_train.shape[1:]), np.float32)
    for c in np.unique(flat):
        where = np.flatnonzero(flat == c)
        out[where] = data.x_train[rng.choice(pools[c], len(where), replace=False)]
    return out.reshape(*labels.shape, *data.x_train.shape[1:])


def kmeans_centres(data: Dataset, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """k-means centres of each class's training images, as many as ``labels`` ``(steps, n)`` asks: the k-means baseline."""
    from sklearn.cluster import KMeans

    labels = np.asarray(labels)
    pools = _per_class(data, labels)
    flat = labels.reshape(-1)
    out = np.empty((flat.size, *data.x_train.shape[1:]), np.float32)
    for c in np.unique(flat):
        where = np.flatnonzero(flat == c)
        xc = data.x_train[pools[c]].reshape(len(pools[c]), -1)
        km = KMeans(len(where), n_init=3, random_state=seed).fit(xc)
        out[where] = km.cluster_centers_.reshape(len(where), *data.x_train.shape[1:])
    return out.reshape(*labels.shape, *data.x_train.shape[1:])


def _path_name(path) -> str:
    parts = []
    for k in path:
        name = getattr(k, "key", getattr(k, "name", getattr(k, "idx", None)))
        if name != "value":
            parts.append(str(name))
    return "/".join(parts)


def save_artifact(path: str | os.PathLike, result: DistillResult) -> Path:
    """Write the distilled set as an ``.npz`` readable without jaxviz.

    Arrays: ``x`` ``(steps, n, H, W, C)`` float32 pixels; ``y`` ``(steps, n)`` int classes or
    ``(steps, n, classes)`` label logits (targets ``softmax(y)``); ``lrs`` ``(epochs * steps,)`` step sizes in
    the order applied (inner step ``k`` uses ``x[k % steps]``); ``init/<path>`` the fixed initialisation;
    ``model`` and ``dataset`` names; ``iterations`` the outer iterations that learned the set.
    """
    d = result.distilled
    arrays = dict(x=np.asarray(d.x, np.float32), y=np.asarray(d.labels), lrs=np.asarray(d.lrs, np.float32),
                  model=np.asarray(result.model), dataset=np.asarray(result.dataset), iterations=np.asarray(result.config.iterations))
    if result.init_params is not None:
        for p, leaf in jax.tree_util.tree_flatten_with_path(result.init_params)[0]:
            arrays[f"init/{_path_name(p)}"] = np.asarray(leaf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def load_artifact(path: str | os.PathLike, model: Model) -> DistillResult:
    """Read a set written by :func:`save_artifact` back as a :class:`DistillResult` for ``model``.

    The recipe fields the file implies are restored (steps, epochs, images per class or soft labels,
    fixed or random init, iterations); step sizes come back exactly (stored after softplus, kept
    as their inverse). Fixed-init files must name ``model``'s architecture and hold every one of its
    parameters.
    """
    path = Path(path)
    if not path.is_file():
        raise JaxvizError(f"no distilled set at {path}; write one with save_artifact or `jaxviz distill --out DIR`.")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    missing = {"x", "y", "lrs", "model", "dataset"} - set(arrays)
    if missing:
        raise JaxvizError(f"{path} is not a distilled set: it lacks {', '.join(sorted(missing))}.")
    if str(arrays["model"]) != model.name:
        raise JaxvizError(f"{path} was distilled for {arrays['model']}, not {model.name}; load it with that model.")
    x, y, lrs = arrays["x"], arrays["y"], arrays["lrs"].astype(np.float32)
    steps = x.shape[0]
    soft = y.ndim == 3
    init_params = None
    if any(k.startswith("init/") for k in arrays):
        leaves = []
        for p, leaf in jax.tree_util.tree_flatten_with_path(model.params)[0]:
            key = f"init/{_path_name(p)}"
            if key not in arrays or arrays[key].shape != leaf.shape:
                raise JaxvizError(f"{path} has no {key} of shape {leaf.shape}: its fixed initialisation is not {model.name}'s.")
            leaves.append(jnp.asarray(arrays[key]))
        init_params = jax.tree.unflatten(jax.tree.structure(model.params), leaves)
    config = DistillConfig(images_per_class=max(1, y.shape[1] // model.num_classes), num_images=y.shape[1] if soft else None,
                           steps=steps, epochs=len(lrs) // steps, init="fixed" if init_params is not None else "random",
                           soft_labels=soft, iterations=int(arrays.get("iterations", 0)))
    raw = jnp.asarray(np.log(np.expm1(lrs.astype(np.float64))), jnp.float32)  # softplus's inverse
    d = Distilled(jnp.asarray(x), jnp.asarray(y), raw)
    return DistillResult(d, init_params, config, model.name, str(arrays["dataset"]), {}, 0.0, None, None)
