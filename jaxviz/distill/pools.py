"""Pools of pretrained networks: the distribution of initial weights of Wang et al.'s adaptation and
malicious-poisoning settings (2018, Sec. 3.3, 4.2).

:func:`pretrained_pool` trains ``size`` networks of one architecture from different initialisations
and data orders, all in one compiled step (``lax.map`` over the networks, so each runs the model's
ordinary convolution), resumable and cached like every jaxviz training run; the parameters come back
stacked on a leading axis, ready for ``distill(..., pool=...)`` with ``init="pool"`` and for
``vmap``. :func:`split_pool` keeps some networks out of distillation for the evaluation.

References:
  Wang, Zhu, Torralba, Efros. "Dataset Distillation", arXiv:1811.10959 (2018), Sections 3.3 and 4.2.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.data import Dataset
from jaxviz.errors import JaxvizError, ShapeError, TargetError
from jaxviz.models.contract import Model
from jaxviz.train import Checkpointer, cache_dir, run_id, run_loop


class Pool(NamedTuple):
    """Pretrained networks of one architecture, parameters stacked on a leading axis of ``size``."""

    params: Any  # the model's params pytree, every leaf with a leading (size,) axis
    model: str
    dataset: str  # the data set they were trained on
    test_accuracy: np.ndarray  # (size,) on that data set's test split
    seed: int  # the pool's seed (pretrained_pool)
    index: tuple[int, ...]  # each network's number j in the pool it was trained in (split_pool keeps them)

    @property
    def size(self) -> int:
        return len(self.index)


def pool_params(model: Model, pool: Any, *, at_least: int = 1) -> Any:
    """The stacked parameters of ``pool`` (a :class:`Pool` or a pytree), checked against ``model``'s architecture.

    Raises:
      ShapeError: the pool's parameter tree or shapes are not ``model.params`` with one leading axis.
      JaxvizError: fewer than ``at_least`` networks.
    """
    params = pool.params if isinstance(pool, Pool) else pool
    want, got = jax.tree.structure(model.params), jax.tree.structure(params)
    if want != got:
        raise ShapeError(f"the pool's networks are not {model.name}s: their parameter tree differs from the model's "
                         f"({len(jax.tree.leaves(params))} vs {len(jax.tree.leaves(model.params))} arrays). Pretrain a pool of "
                         "this architecture with jaxviz.distill.pretrained_pool(model, data, size).")
    sizes = set()
    for (path, leaf), ref in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(model.params)):
        if np.ndim(leaf) != np.ndim(ref) + 1 or tuple(np.shape(leaf)[1:]) != tuple(np.shape(ref)):
            raise ShapeError(f"pool parameter {jax.tree_util.keystr(path)} has shape {tuple(np.shape(leaf))}; {model.name} needs "
                             f"(networks, *{tuple(np.shape(ref))}): a pool of another architecture or class count, or unstacked "
                             "parameters (stack networks with jax.tree.map(lambda *a: jnp.stack(a), *params)).")
        sizes.add(np.shape(leaf)[0])
    if len(sizes) != 1:
        raise ShapeError(f"the pool's parameters disagree on the number of networks: {sorted(sizes)}.")
    size = sizes.pop()
    if size < at_least:
        raise JaxvizError(f"the pool has {size} network(s) but each iteration samples {at_least} distinct ones; lower num_inits "
                          "or pretrain a larger pool.")
    return params


def check_attack(attack: Any, num_classes: int) -> tuple[int, int]:
    """``(a, b)`` as two distinct classes in ``0..num_classes - 1``, else :class:`~jaxviz.errors.TargetError`."""
    try:
        a, b = (int(c) for c in attack)
    except (TypeError, ValueError):
        raise TargetError(f"an attack is a pair of classes (attacked, target), e.g. (3, 8); got {attack!r}.") from None
    if not (0 <= a < num_classes and 0 <= b < num_classes):
        raise TargetError(f"attack classes must be in 0..{num_classes - 1}; got {a} -> {b}.")
    if a == b:
        raise TargetError(f"the attacked class and the target class must differ; got {a} -> {b}.")
    return a, b


def network_fingerprints(params: Any) -> list[str]:
    """One hash per network of stacked ``params``: equal networks, equal strings."""
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
    out = []
    for i in range(leaves[0].shape[0]):
        h = hashlib.sha256()
        for leaf in leaves:
            h.update(np.ascontiguousarray(leaf[i]).tobytes())
        out.append(h.hexdigest()[:16])
    return out


def split_pool(pool: Pool, held_out: int) -> tuple[Pool, Pool]:
    """``(distillation pool, held-out pool)``: the last ``held_out`` networks are kept out of distillation."""
    if not 1 <= held_out < pool.size:
        raise JaxvizError(f"held_out must be between 1 and {pool.size - 1} for a pool of {pool.size}; got {held_out}.")
    cut = pool.size - held_out

    def part(sl):
        return pool._replace(params=jax.tree.map(lambda a: a[sl], pool.params), test_accuracy=pool.test_accuracy[sl],
                             index=pool.index[sl])

    return part(slice(0, cut)), part(slice(cut, None))


def pretrained_pool(model: Model, data: Dataset, size: int, *, epochs: int = 3, batch_size: int = 128, learning_rate: float = 1e-3,
                    seed: int = 0, cache: str | os.PathLike | None = None, progress: bool = True,
                    checkpoint_seconds: float = 30.0) -> Pool:
    """Train ``size`` networks of ``model``'s architecture on ``data``, each from its own initialisation and data order.

    Network ``j`` starts from ``model.init(fold_in(key(seed), j))`` and sees the training split in the
    order ``default_rng([seed, j, epoch])``; all take Adam steps (cosine decay over the run) on softmax
    cross-entropy in one compiled step that loops over the networks (``lax.map``). Checkpoints go to
    ``<cache>/checkpoints/pool-<model>-<data>-<hash>``; the same call again loads the finished pool.

    Args:
      model: the architecture (its ``init`` and ``apply``; trained in evaluation mode, so no dropout
        or batch statistics).
      data: the training split trains, the test split scores each network.
      size: networks in the pool.
      epochs, batch_size, learning_rate: the recipe, the same for every network.
      seed: pools with different seeds have different networks.

    Returns:
      a :class:`Pool`.
    """
    if model.init is None:
        raise ShapeError(f"{model.name} has no init function, so a pool cannot be trained; use a zoo model (lenet, convnet).")
    model.require_head("a pool of pretrained classifiers")
    if tuple(data.x_train.shape[1:]) != tuple(model.input_shape):
        raise ShapeError(f"{model.name} expects inputs {model.input_shape}; {data.name} has {data.x_train.shape[1:]}.")
    n = len(data.y_train)
    for name, value in (("size", size), ("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise JaxvizError(f"{name} must be at least 1; got {value}.")
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ShapeError(f"batch_size {batch_size} exceeds the {n} training examples of {data.name}.")
    total = per_epoch * epochs
    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, total))
    params = jax.jit(jax.vmap(lambda j: model.init(jax.random.fold_in(jax.random.key(seed), j))))(jnp.arange(size))
    x_train, y_train = np.asarray(data.x_train), np.asarray(data.y_train)

    def orders(epoch):
        return np.stack([np.random.default_rng([seed, j, epoch]).permutation(n) for j in range(size)])

    cached = {}

    def batches(i):
        epoch, b = divmod(i, per_epoch)
        if epoch not in cached:
            cached.clear()
            cached[epoch] = orders(epoch)
        idx = cached[epoch][:, b * batch_size:(b + 1) * batch_size]
        return x_train[idx], y_train[idx]

    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

    def step(carry, batch):
        p, s = carry
        losses, grads = jax.lax.map(lambda a: jax.value_and_grad(loss)(*a), (p, *batch))
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), {"loss": losses.mean()}

    recipe = dict(size=size, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    identity = dict(model=model.name, input_shape=list(model.input_shape), dataset=data.name, class_names=list(data.class_names or ()),
                    pool=recipe)
    ckpt = Checkpointer(cache_dir(cache) / "checkpoints" / f"pool-{model.name}-{data.name}-{run_id(**identity)}")
    try:
        run = run_loop(step, (params, opt.init(params)), batches, steps=total, checkpointer=ckpt, meta=identity,
                       expect=dict(model=model.name, dataset=data.name), desc=f"pool of {size} {model.name} on {data.name}",
                       progress=progress, checkpoint_seconds=checkpoint_seconds)
    finally:
        ckpt.close()
    params = jax.tree.map(jnp.asarray, run.state[0])  # a restored checkpoint holds NumPy arrays
    return Pool(params, model.name, data.name, np.asarray(pool_accuracy(model, params, data.x_test, data.y_test)), seed,
                tuple(range(size)))


@jax.jit
def _correct(model: Model, params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    return jax.lax.map(lambda p: jnp.sum(jnp.argmax(model.apply(p, x), -1) == y), params)


def pool_accuracy(model: Model, params: Any, x: Any, y: Any, batch: int = 1000) -> jax.Array:
    """Accuracy ``(networks,)`` of each network of stacked ``params`` on ``(x, y)``."""
    correct = 0
    for i in range(0, len(x), batch):
        correct = correct + _correct(model, params, jnp.asarray(x[i:i + batch]), jnp.asarray(y[i:i + batch]))
    return correct / len(x)
