"""Supervised training of small zoo models with optax, resumable at any step."""

from __future__ import annotations

import os
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxviz.data import Dataset
from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.models.contract import Model
from jaxviz.train.checkpoints import Checkpointer, cache_dir, run_id


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
    losses: np.ndarray  # mean training loss per epoch run in this call
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


def make_train_step(model: Model, optimizer: optax.GradientTransformation) -> Callable:
    """A jitted ``step(params, opt_state, x, y) -> (params, opt_state, loss)``."""

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(lambda p: cross_entropy(model.apply(p, x), y))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def predict(model: Model, x: np.ndarray, batch_size: int = 1000, params: Any = None) -> np.ndarray:
    """Predicted class of every example, in batches (one compile for full batches, one for the tail)."""
    params = model.params if params is None else params
    fn = jax.jit(lambda p, xb: jnp.argmax(model.apply(p, xb), axis=-1))
    return np.concatenate([np.asarray(fn(params, x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


def accuracy(model: Model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    return float((predict(model, x, batch_size) == np.asarray(y)).mean())


def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def _checkpoint_due(config: TrainConfig, step: int, last_save: float) -> bool:
    if config.checkpoint_every:
        return step % config.checkpoint_every == 0
    return time.perf_counter() - last_save >= config.checkpoint_seconds


def train(
    model: Model,
    data: Dataset,
    config: TrainConfig = TrainConfig(),
    *,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` and return it with its test accuracy.

    Checkpoints go to ``<cache>/checkpoints/<model>-<data>-<hash>`` every ``checkpoint_every`` steps
    (by default every ``checkpoint_seconds`` of wall time), at the end and when interrupted; a later
    call with the same model, data and config resumes from the last one and ends with the same parameters as an uninterrupted run.
    ``stop_after_steps`` ends the run early at that global step (after checkpointing it).
    """
    if model.init is None:
        raise ShapeError(f"{model.name} has no init function, so it cannot be trained from scratch.")
    if tuple(data.x_train.shape[1:]) != tuple(model.input_shape):
        raise ShapeError(f"{model.name} expects inputs {model.input_shape}; {data.name} has {data.x_train.shape[1:]}.")
    n = len(data.x_train)
    steps_per_epoch = n // config.batch_size
    if steps_per_epoch == 0:
        raise ShapeError(f"batch_size {config.batch_size} exceeds the {n} training examples of {data.name}.")
    total = steps_per_epoch * config.epochs
    optimizer = make_optimizer(config, total)
    step_fn = make_train_step(model, optimizer)

    params = model.init(jax.random.key(config.seed))
    opt_state = optimizer.init(params)
    recipe = {k: v for k, v in config._asdict().items() if not k.startswith("checkpoint_")}
    identity = dict(model=model.name, input_shape=list(model.input_shape), dataset=data.name, class_names=list(data.class_names), config=recipe)
    ckpt_dir = cache_dir(cache) / "checkpoints" / f"{model.name}-{data.name}-{run_id(**identity)}"
    ckpt = Checkpointer(ckpt_dir)
    start = 0
    resumed_from = ckpt.latest_step()
    if resumed_from is not None:
        (params, opt_state), _ = ckpt.restore((params, opt_state), expect=dict(model=model.name, dataset=data.name))
        start = resumed_from
    end = total if stop_after_steps is None else min(total, stop_after_steps)

    t0 = last_save = time.perf_counter()
    losses = []
    step = start
    bar = tqdm(total=total, initial=start, desc=f"train {model.name} on {data.name}", disable=not progress, unit="step")
    try:
        while step < end:
            epoch, offset = divmod(step, steps_per_epoch)
            order = _epoch_order(config.seed, epoch, n)
            epoch_losses = []
            for b in range(offset, steps_per_epoch):
                if step >= end:
                    break
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                params, opt_state, loss = step_fn(params, opt_state, data.x_train[idx], data.y_train[idx])
                epoch_losses.append(loss)
                step += 1
                bar.update(1)
                if step == end or _checkpoint_due(config, step, last_save):
                    ckpt.save(step, (params, opt_state), identity)
                    last_save = time.perf_counter()
            losses.append(float(jnp.mean(jnp.stack(epoch_losses))))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    except KeyboardInterrupt:
        ckpt.save(step, (params, opt_state), identity)
        raise
    finally:
        bar.close()
        ckpt.close()
    trained = model.replace(params=params)
    acc = accuracy(trained, data.x_test, data.y_test)
    return TrainResult(trained, acc, np.asarray(losses), step, time.perf_counter() - t0, resumed_from, str(ckpt_dir))


def load_trained(checkpoint_dir: str | os.PathLike) -> Model:
    """The model saved in a checkpoint folder written by :func:`train` (``jaxviz train`` prints it)."""
    from jaxviz.models.registry import TRAINABLE, get_model

    if not Path(checkpoint_dir).is_dir():
        raise CheckpointError(f"checkpoint folder not found: {checkpoint_dir}")
    ckpt = Checkpointer(checkpoint_dir)
    try:
        step = ckpt.latest_step()
        if step is None:
            raise CheckpointError(f"{checkpoint_dir} holds no checkpoint; train one with: jaxviz train --model lenet")
        meta = ckpt.read_meta(step)
        if meta.get("model") not in TRAINABLE:
            raise CheckpointError(f"{checkpoint_dir} was not written by jaxviz train (model {meta.get('model')!r})")
        model = get_model(meta["model"], meta["input_shape"], meta.get("class_names"))
        config = TrainConfig(**meta["config"])
        template = (model.params, make_optimizer(config, 1).init(model.params))
        (params, _), _ = ckpt.restore(template, step, expect={"model": meta["model"]})
    finally:
        ckpt.close()
    return model.replace(params=params)
