"""Adapting pretrained networks to a new data set with a few distilled images (Wang et al. 2018, Sec. 4.2, Fig. 1b).

Networks pretrained on one data set (here UCI digits upscaled to MNIST's layout) are the pool of
initial weights; :func:`adaptation` distils images of the target data set (MNIST-5k) so that the
learned steps adapt any of them, and compares on held-out pretrained networks with fine-tuning on
as many random real target images (learned step sizes, and the best constant step size), with full
fine-tuning on the whole target training split, and with no adaptation.

References:
  Wang, Zhu, Torralba, Efros. "Dataset Distillation", arXiv:1811.10959 (2018), Sec. 4.2 and Table 2
  (USPS -> MNIST with 100 distilled images: 67.5 +/- 3.9% -> 92.7 +/- 1.4%).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.data import Dataset, resize
from jaxviz.distill.baselines import train_baseline
from jaxviz.distill.core import DistillConfig, DistillResult, distill, initial_labels
from jaxviz.distill.evaluate import evaluate_pool, held_out_params, random_real
from jaxviz.distill.pools import Pool, pool_accuracy, pool_params
from jaxviz.errors import JaxvizError
from jaxviz.models.contract import Model

# Wang et al.'s adaptation recipe: 1 image per class per step, 10 steps x 3 epochs (100 images).
ADAPT = DistillConfig(images_per_class=1, steps=10, epochs=3, init="pool", num_inits=4)


def upscale(data: Dataset, size: int = 28, box: int = 20) -> Dataset:
    """``data`` with each image stretched to ``box x box`` and centred in ``size x size`` zeros.

    MNIST centres its digits in a 20 x 20 box of a 28 x 28 image; UCI digits fill their 8 x 8 frame,
    so ``upscale(load_dataset("digits"))`` puts them in MNIST's layout (pixels stay in [0, 1]).
    """
    if not 1 <= box <= size:
        raise JaxvizError(f"box must be between 1 and size ({size}); got {box}.")
    lo = (size - box) // 2
    pad = ((0, 0), (lo, size - box - lo), (lo, size - box - lo), (0, 0))

    def up(x):
        return np.pad(resize(np.asarray(x, np.float32), box, crop=None), pad).astype(np.float32)

    return data._replace(name=f"{data.name}{size}", x_train=up(data.x_train), x_test=up(data.x_test))


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _finetune(model: Model, params: Any, x: jax.Array, y: jax.Array, order: jax.Array, lr: jax.Array, batch_size: int) -> Any:
    opt = optax.adam(optax.cosine_decay_schedule(lr, order.shape[0]))

    def one(p):
        def step(carry, idx):
            q, s = carry
            g = jax.grad(lambda w: optax.softmax_cross_entropy_with_integer_labels(model.apply(w, x[idx]), y[idx]).mean())(q)
            u, s = opt.update(g, s, q)
            return (optax.apply_updates(q, u), s), None

        return jax.lax.scan(step, (p, opt.init(p)), order)[0][0]

    return jax.lax.map(one, params)


def finetune(model: Model, params: Any, data: Dataset, *, epochs: int = 3, batch_size: int = 128, learning_rate: float = 1e-3,
             seed: int = 0) -> Any:
    """Full fine-tuning: each network of stacked ``params`` trained on all of ``data``'s training split with Adam.

    Every network sees the same minibatches (``default_rng([seed, epoch])`` orders); returns the
    stacked fine-tuned parameters.
    """
    params = pool_params(model, params)
    n = len(data.y_train)
    per_epoch = n // batch_size
    if epochs < 1 or per_epoch < 1:
        raise JaxvizError(f"epochs must be at least 1 and batch_size at most {n}; got epochs={epochs}, batch_size={batch_size}.")
    order = np.concatenate([np.random.default_rng([seed, e]).permutation(n)[:per_epoch * batch_size].reshape(per_epoch, batch_size)
                            for e in range(epochs)])
    return _finetune(model, params, jnp.asarray(data.x_train), jnp.asarray(data.y_train), jnp.asarray(order),
                     jnp.float32(learning_rate), batch_size)


class Adaptation(NamedTuple):
    """Test accuracy on the target data of held-out pretrained networks, adapted in each way."""

    rows: list[dict]  # {"method", "images", "steps", "accuracy", "std", "note"}; accuracy in [0, 1]
    distilled: DistillResult
    random_real: DistillResult  # random real target images with learned step sizes
    markdown: str


def adaptation(model: Model, data: Dataset, pool: Pool | Any, held_out: Pool | Any, config: DistillConfig = ADAPT, *,
               finetune_epochs: int = 3, select_networks: int = 8, cache: str | os.PathLike | None = None,
               progress: bool = True) -> Adaptation:
    """Wang et al.'s adaptation experiment: distil ``data`` for networks pretrained elsewhere, compare on held-out ones.

    Args:
      model: the architecture of the pool.
      data: the target data set (its training split is distilled and fine-tuned on, its test split scores).
      pool: pretrained networks distilled on (``init="pool"``).
      held_out: other pretrained networks of the same kind, used only to measure.
      config: the distillation recipe (``init`` is set to ``"pool"``); default :data:`ADAPT`.
      finetune_epochs: epochs of full fine-tuning (Adam, 1e-3, batch 128) for the last row.
      select_networks: networks of ``pool`` that choose the constant step size of the random-real row.

    Returns:
      :class:`Adaptation` with rows: no adaptation, distilled, random real (learned step sizes),
      random real (best constant step size), full fine-tuning.
    """
    config = config._replace(init="pool")
    if config.soft_labels:
        raise JaxvizError("adaptation compares hard-label sets with real images; use soft_labels=False.")
    distilled = distill(model, data, config, pool=pool, cache=cache, progress=progress)
    held = held_out_params(model, distilled, held_out)
    labels = np.asarray(initial_labels(config, model.num_classes))
    real = random_real(data, labels, seed=config.seed)
    base = distill(model, data, config._replace(learn_images=False), images=real, pool=pool, cache=cache, progress=progress)
    count, inner = labels.size, config.steps * config.epochs
    rows = []

    def row(method, accs, note="", images=count, steps=inner):
        accs = np.asarray(accs)
        rows.append(dict(method=method, images=images, steps=steps, accuracy=float(accs.mean()), std=float(accs.std()), note=note))

    row("no adaptation", pool_accuracy(model, held, data.x_test, data.y_test), "pretrained networks as they are", 0, 0)
    row("distilled", evaluate_pool(model, distilled, held, data.x_test, data.y_test).accuracies,
        f"{config.steps} steps x {config.epochs} epochs, {config.iterations} iterations")
    row("random real (learned step sizes)", evaluate_pool(model, base, held, data.x_test, data.y_test).accuracies,
        "step sizes learned like the distilled set's")
    select = jax.tree.map(lambda a: a[:select_networks], pool_params(model, pool))
    const = train_baseline(model, real[None], labels, held, data, epochs=config.epochs, select_inits=select, seed=config.seed)
    row("random real (best constant step size)", const.test_accuracies[0], f"step size {const.step_sizes[0]:g}")
    tuned = finetune(model, held, data, epochs=finetune_epochs, seed=config.seed)
    per_epoch = len(data.y_train) // 128
    row("full fine-tuning", pool_accuracy(model, tuned, data.x_test, data.y_test),
        f"all {len(data.y_train)} training images, {finetune_epochs} epochs of Adam", len(data.y_train), per_epoch * finetune_epochs)
    return Adaptation(rows, distilled, base, rows_markdown(rows))


def rows_markdown(rows: Sequence[Mapping], columns: Sequence[str] = ("method", "images", "steps", "accuracy", "note")) -> str:
    """A markdown table of result rows; values in [0, 1] under "accuracy"-like keys shown as percent with their ``std``."""
    def cell(r, c):
        v = r[c]
        if isinstance(v, float):
            std = r.get(f"{c}_std", r.get("std") if c == "accuracy" else None)
            return f"{100 * v:.1f}" + (f" +/- {100 * std:.1f}" if std else "")
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)

