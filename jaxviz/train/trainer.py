"""Supervised training of small zoo models with optax, resumable at any step."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.data import Dataset
from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.models.contract import Model
from jaxviz.train.checkpoints import Checkpointer, cache_dir, latest_checkpoint, run_id
from jaxviz.train.loop import run_loop


class TrainConfig(NamedTuple):
    """How to train: Adam(W) on softmax cross-entropy, data reshuffled each epoch from ``seed``."""

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" (decay to 0 over the run) or "constant"
    seed: int = 0
    checkpoint_every: int = 0  # steps between checkpoints; 0 = every checkpoint_seconds of wall time
    checkpoint_seconds: float = 30.0


class TrainResult(NamedTuple):
    model: Model  # the model with trained parameters
    test_accuracy: float
    losses: np.ndarray  # mean training loss per epoch, resumed runs included (``LoopResult.history``)
    steps: int
    seconds: float
    resumed_from: int | None  # global step restored from a checkpoint, if any
    checkpoint_dir: str


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def make_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """Adam (AdamW with weight decay) with the config's learning-rate schedule over ``total_steps``."""
    if config.schedule not in ("cosine", "constant"):
        raise JaxvizError(f"unknown schedule {config.schedule!r}; use 'cosine' or 'constant'.")
    lr = optax.cosine_decay_schedule(config.learning_rate, total_steps) if config.schedule == "cosine" else config.learning_rate
    if config.weight_decay:
        return optax.adamw(lr, weight_decay=config.weight_decay)
    return optax.adam(lr)


def make_train_step(model: Model, optimizer: optax.GradientTransformation, seed: int = 0) -> Callable:
    """``step((params, state, opt_state), (x, y, i)) -> (new, {"loss": loss})`` for :func:`run_loop`.

    Runs the model in training mode (batch statistics, dropout with ``fold_in(key(seed), i)``); ``state``
    is the model's non-trainable state (``None`` for most small nets).
    """

    def step(carry, batch):
        params, state, opt_state = carry
        x, y, i = batch

        def loss_fn(p):
            logits, new_state = model.apply_train(p, x, state=state, key=jax.random.fold_in(jax.random.key(seed), i))
            return cross_entropy(logits, y), new_state

        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), state, opt_state), {"loss": loss}

    return step


@jax.jit
def _predicted_classes(model: Model, params: Any, x: jax.Array) -> jax.Array:
    return jnp.argmax(model.apply(params, x), axis=-1)


def predict(model: Model, x: np.ndarray, batch_size: int = 1000, params: Any = None) -> np.ndarray:
    """Predicted class of every example, in batches: one compiled program per batch shape, reused
    across calls (full batches and the tail). Every batch is dispatched before the first result is
    read, so an accelerator is not left waiting on the host between batches."""
    model.require_head("predict")
    params = model.params if params is None else params
    pending = [_predicted_classes(model, params, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(p) for p in pending])


def accuracy(model: Model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    return float((predict(model, x, batch_size) == np.asarray(y)).mean())


def train(
    model: Model,
    data: Dataset,
    config: TrainConfig = TrainConfig(),
    *,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train a classifier ``model`` on ``data`` with softmax cross-entropy and return it with its test accuracy.

    Checkpoints go to ``<cache>/checkpoints/<model>-<data>-<hash>`` every ``checkpoint_every`` steps
    (by default every ``checkpoint_seconds`` of wall time), at the end and when interrupted; a later
    call with the same model, data and config resumes from the last one and ends with the same
    parameters as an uninterrupted run. ``stop_after_steps`` ends the run early at that global step
    (after checkpointing it). The loop is :func:`jaxviz.train.run_loop`.
    """
    if model.init is None:
        raise ShapeError(f"{model.name} has no init function, so it cannot be trained from scratch; "
                         "wrap it with jaxviz.models.from_nnx(module, shape, build=...) or from_linen.")
    model.require_head("training a classifier")
    if tuple(data.x_train.shape[1:]) != tuple(model.input_shape):
        raise ShapeError(f"{model.name} expects inputs {model.input_shape}; {data.name} has {data.x_train.shape[1:]}.")
    n = len(data.x_train)
    steps_per_epoch = n // config.batch_size
    if steps_per_epoch == 0:
        raise ShapeError(f"batch_size {config.batch_size} exceeds the {n} training examples of {data.name}.")
    total = steps_per_epoch * config.epochs
    optimizer = make_optimizer(config, total)
    params = model.init(jax.random.key(config.seed))
    carry = (params, model.state, optimizer.init(params))
    recipe = {k: v for k, v in config._asdict().items() if not k.startswith("checkpoint_")}
    identity = dict(model=model.name, input_shape=list(model.input_shape), dataset=data.name, class_names=list(data.class_names), config=recipe)
    ckpt_dir = cache_dir(cache) / "checkpoints" / f"{model.name}-{data.name}-{run_id(**identity)}"
    order = functools.lru_cache(maxsize=1)(lambda epoch: np.random.default_rng([config.seed, epoch]).permutation(n))

    def batches(i):
        epoch, b = divmod(i, steps_per_epoch)
        idx = order(epoch)[b * config.batch_size : (b + 1) * config.batch_size]
        return data.x_train[idx], data.y_train[idx], np.int32(i)

    ckpt = Checkpointer(ckpt_dir)
    try:
        run = run_loop(make_train_step(model, optimizer, config.seed), carry, batches, steps=total, checkpointer=ckpt,
                       meta=identity, expect=dict(model=model.name, dataset=data.name), desc=f"train {model.name} on {data.name}",
                       progress=progress, checkpoint_every=config.checkpoint_every,
                       checkpoint_seconds=config.checkpoint_seconds, stop_after_steps=stop_after_steps)
    finally:
        ckpt.close()
    params, state, _ = run.state
    trained = model.replace(params=params, state=state)
    acc = accuracy(trained, data.x_test, data.y_test)
    losses = run.history.get("loss", np.zeros(0))
    epochs = (run.first_step + np.arange(len(losses))) // steps_per_epoch
    per_epoch = np.asarray([losses[epochs == e].mean() for e in np.unique(epochs)])
    return TrainResult(trained, acc, per_epoch, run.step, run.seconds, run.resumed_from, str(ckpt_dir))


def load_trained(checkpoint_dir: str | os.PathLike) -> Model:
    """The model saved in a checkpoint folder written by :func:`train` (``jaxviz train`` prints it)."""
    from jaxviz.models.registry import TRAINABLE, get_model

    with latest_checkpoint(checkpoint_dir, "train one with: jaxviz train --model lenet") as (ckpt, step, meta):
        if meta.get("model") not in TRAINABLE:
            raise CheckpointError(f"{checkpoint_dir} was not written by jaxviz train (model {meta.get('model')!r})")
        model = get_model(meta["model"], meta["input_shape"], meta.get("class_names"))
        config = TrainConfig(**meta["config"])
        template = (model.params, model.state, make_optimizer(config, 1).init(model.params))
        (params, state, _), _ = ckpt.restore(template, step, expect={"model": meta["model"]})
    return model.replace(params=params, state=state)
