"""Malicious data poisoning with distilled images (Wang et al. 2018, Sec. 3.3, 4.2, Fig. 1c).

Given a pool of well-trained networks, :func:`poisoning` distils images such that one gradient step on
them (with the learned step size) makes a network classify class ``a`` as class ``b`` while keeping
the other classes: the outer loss is the cross-entropy of real images whose class-``a`` labels are
replaced by ``b`` (``distill(..., attack=(a, b))``). It is measured on held-out pretrained networks
(:func:`poison_effect`: the fraction of ``a``'s test images classified as ``b`` and the accuracy on the
other classes, before and after the step) and compared with the same number of real images of ``a``
labelled ``b``, whose step size is learned on the same objective.

References:
  Wang, Zhu, Torralba, Efros. "Dataset Distillation", arXiv:1811.10959 (2018), Sec. 3.3 and 4.2.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.data import Dataset
from jaxviz.distill.adapt import rows_markdown
from jaxviz.distill.core import DistillConfig, DistillResult, distill, initial_labels
from jaxviz.distill.evaluate import _trained, held_out_params, random_real
from jaxviz.distill.pools import Pool, check_attack, pool_params
from jaxviz.errors import TargetError
from jaxviz.models.contract import Model

# One gradient step on 10 distilled images (one per class), as in Wang et al.'s Fig. 1c.
POISON = DistillConfig(images_per_class=1, steps=1, epochs=1, init="pool", num_inits=4)


class PoisonEffect(NamedTuple):
    """Per network: the fraction of class ``a``'s test images predicted as ``b``, and accuracy on every other class."""

    fraction: np.ndarray  # (networks,)
    others: np.ndarray  # (networks,)


@jax.jit
def _predictions(model: Model, params: Any, x: jax.Array) -> jax.Array:
    return jax.lax.map(lambda p: jnp.argmax(model.apply(p, x), -1), params)


def poison_effect(model: Model, params: Any, x: Any, y: Any, attack: tuple[int, int]) -> PoisonEffect:
    """How far stacked ``params`` send class ``a`` to ``b`` on ``(x, y)``, and their accuracy on the other classes."""
    a, b = check_attack(attack, model.num_classes)
    params = pool_params(model, params)
    y = np.asarray(y)
    if not np.any(y == a) or np.all(y == a):
        raise TargetError(f"the evaluation images need class {a} and other classes; got classes {sorted(set(y.tolist()))}.")
    pred = np.asarray(_predictions(model, params, jnp.asarray(x)))
    return PoisonEffect(np.mean(pred[:, y == a] == b, axis=1), np.mean(pred[:, y != a] == y[None, y != a], axis=1))


class Poisoning(NamedTuple):
    """Held-out networks before and after one poisoned step: distilled images vs real images of ``a`` labelled ``b``."""

    attack: tuple[int, int]
    rows: list[dict]  # {"method", "images", "steps", "fraction", "fraction_std", "others", "others_std", "note"}
    distilled: DistillResult
    baseline: DistillResult
    markdown: str


def poisoning(model: Model, data: Dataset, pool: Pool | Any, held_out: Pool | Any, attack: tuple[int, int],
              config: DistillConfig = POISON, *, cache: str | os.PathLike | None = None, progress: bool = True) -> Poisoning:
    """Distil images that make pretrained networks classify ``attack[0]`` as ``attack[1]`` after the learned steps.

    Args:
      model: the architecture of the pool.
      data: the data set the pool was trained on (its training split drives the outer loss, its test
        split measures).
      pool: pretrained networks distilled on.
      held_out: other pretrained networks, used only to measure.
      attack: ``(a, b)``: the attacked class and the class it should become.
      config: the distillation recipe (``init`` is set to ``"pool"``); default :data:`POISON`.

    Returns:
      :class:`Poisoning` with rows "pretrained" (before), "distilled" and "real a labelled b" (after).
    """
    config = config._replace(init="pool")
    a, b = check_attack(attack, model.num_classes)
    params = pool_params(model, pool)
    distilled = distill(model, data, config, pool=params, attack=(a, b), cache=cache, progress=progress)
    held = held_out_params(model, distilled, held_out)
    labels = np.asarray(initial_labels(config, model.num_classes))
    real = random_real(data, np.full(labels.shape, a), seed=config.seed)
    baseline = distill(model, data, config._replace(learn_images=False), images=real, labels=np.full(labels.shape, b), pool=params,
                       attack=(a, b), cache=cache, progress=progress)
    rows = []

    def row(method, effect, note, images=labels.size, steps=config.steps * config.epochs):
        rows.append(dict(method=method, images=images, steps=steps, fraction=float(effect.fraction.mean()),
                         fraction_std=float(effect.fraction.std()), others=float(effect.others.mean()),
                         others_std=float(effect.others.std()), note=note))

    row("pretrained (before)", poison_effect(model, held, data.x_test, data.y_test, (a, b)), "no poisoned step", 0, 0)
    row("distilled", poison_effect(model, _trained(model, held, distilled.distilled), data.x_test, data.y_test, (a, b)),
        f"{config.iterations} iterations, step sizes {', '.join(f'{v:.3g}' for v in np.asarray(distilled.distilled.lrs))}")
    row(f"real {data.class_names[a]} labelled {data.class_names[b]}",
        poison_effect(model, _trained(model, held, baseline.distilled), data.x_test, data.y_test, (a, b)),
        f"learned step sizes {', '.join(f'{v:.3g}' for v in np.asarray(baseline.distilled.lrs))}")
    return Poisoning((a, b), rows, distilled, baseline,
                     rows_markdown(rows, ("method", "images", "steps", "fraction", "others", "note")))
