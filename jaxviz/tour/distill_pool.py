"""Dataset distillation on pools of pretrained networks (Wang et al. 2018, Fig. 1b/1c): adapting networks
pretrained on another data set, and poisoning networks so that one class becomes another. Used by
``jaxviz distill --init pool`` and ``--poison A:B``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jaxviz.data import Dataset, load_dataset
from jaxviz.distill import (
    DistillConfig,
    adaptation,
    adaptation_figure,
    distilled_figure,
    evaluate_pool,
    poisoning,
    poisoning_figure,
    pretrained_pool,
    save_artifact,
    split_pool,
    upscale,
)
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models import Model
from jaxviz.viz import Report

POOL_STEPS = 200  # default pretraining length: about this many minibatches of 128 per network


def check_pool_split(pool_size: int, held_out: int, num_inits: int, attack=None, pretrain_on: str | None = None,
                     dataset: str | None = None) -> None:
    """Raise :class:`~jaxviz.errors.JaxvizError` for a pool split or poisoning setup :func:`pool_study` cannot run."""
    if not 1 <= held_out < pool_size or pool_size - held_out < num_inits:
        raise JaxvizError(f"a pool of {pool_size} with {held_out} held out leaves {pool_size - held_out} networks to distil on; it needs "
                          f"held_out >= 1 and at least num_inits ({num_inits}) left.")
    if attack is not None and pretrain_on not in (None, dataset):
        raise JaxvizError("poisoning attacks networks trained on the distilled data set itself; drop --pretrain-on.")


def pretraining_set(name: str, data: Dataset) -> Dataset:
    """The data set ``name`` in ``data``'s image size (smaller images upscaled into MNIST's layout); same classes."""
    source = data if name == data.name else load_dataset(name)
    size, channels = data.x_train.shape[1], data.x_train.shape[3]
    if source.x_train.shape[1] < size:
        source = upscale(source, size, box=round(size * 20 / 28))
    if source.x_train.shape[1:] != data.x_train.shape[1:] or source.x_train.shape[3] != channels:
        raise ShapeError(f"cannot pretrain on {name}: its images are {source.x_train.shape[1:]}, {data.name}'s {data.x_train.shape[1:]}.")
    if len(source.class_names) != len(data.class_names):
        raise ShapeError(f"{name} has {len(source.class_names)} classes and {data.name} {len(data.class_names)}; the pretrained classifier "
                         "is kept, so they need the same classes.")
    return source


def pool_study(report: Report, out: Path, model: Model, data: Dataset, config: DistillConfig, *, pretrain_on: str | None = None,
               attack: tuple[int, int] | None = None, pool_size: int = 16, held_out: int = 6, pretrain_epochs: int | None = None,
               finetune_epochs: int = 3, cache=None, progress: bool = True) -> dict:
    """Pretrain a pool, split off held-out networks, run :func:`adaptation` or (with ``attack``) :func:`poisoning`; add a section.

    Returns:
      ``{"runs": [...], "adaptation" | "poisoning": {"rows", "markdown", ...}}``.
    """
    check_pool_split(pool_size, held_out, config.num_inits, attack, pretrain_on, data.name)
    source = pretraining_set(pretrain_on or data.name, data)
    epochs = pretrain_epochs or max(1, math.ceil(POOL_STEPS * 128 / len(source.y_train)))
    pool = pretrained_pool(model, source, pool_size, epochs=epochs, cache=cache, progress=progress)
    train, held = split_pool(pool, held_out)
    note = (f"{pool_size} {model.name}s pretrained on {source.name} ({epochs} epochs, test accuracy there "
            f"{100 * pool.test_accuracy.mean():.1f} +/- {100 * pool.test_accuracy.std():.1f}%); {pool_size - held_out} are distilled on "
            f"({config.num_inits} sampled per iteration), {held_out} are held out and measure everything below.")
    if attack is None:
        res = adaptation(model, data, train, held, config, finetune_epochs=finetune_epochs, cache=cache, progress=progress)
        sets = [("distilled", res.distilled), ("random-real", res.random_real)]
        section = report.section("Dataset distillation: adaptation",
                                 f"Wang et al. (2018), Fig. 1b: networks pretrained on {source.name} adapted to {data.name} by "
                                 f"{config.steps * config.epochs} learned steps on {res.rows[1]['images']} images. {note}")
        section.figure(adaptation_figure(res.rows, title=f"{source.name} -> {data.name}, held-out networks"),
                       "test accuracy after each kind of adaptation", name=f"adaptation-{source.name}-{data.name}")
        summary = {"adaptation": {"rows": res.rows, "markdown": res.markdown, "pretrain_on": source.name}}
    else:
        res = poisoning(model, data, train, held, attack, config, cache=cache, progress=progress)
        a, b = (data.class_names[c] for c in attack)
        sets = [("distilled", res.distilled), ("real-attacked", res.baseline)]
        section = report.section("Dataset distillation: poisoning",
                                 f"Wang et al. (2018), Fig. 1c: images whose learned step makes pretrained networks classify {a} as "
                                 f"{b}. {note}")
        section.figure(poisoning_figure(res.rows, (a, b)), "held-out networks before and after the step",
                       name=f"poisoning-{data.name}-{attack[0]}-{attack[1]}")
        summary = {"poisoning": {"rows": res.rows, "markdown": res.markdown, "attack": list(attack)}}
    section.figure(distilled_figure(res.distilled, data.class_names), "distilled images (rows: inner steps) with their step sizes",
                   name=f"distilled-pool-{model.name}-{data.name}")
    section.code(next(iter(summary.values()))["markdown"])
    runs = []
    for tag, r in sets:
        ev = evaluate_pool(model, r, held, data.x_test, data.y_test)
        artifact = save_artifact(out / "distill" / f"{tag}-{model.name}-{data.name}-pool.npz", r)
        runs.append({"dataset": data.name, "model": model.name, "init": "pool", "images_per_class": config.images_per_class,
                     "steps": config.steps, "epochs": config.epochs, "soft_labels": False, "test_accuracy": ev.mean,
                     "test_accuracy_std": ev.std, "baseline": tag != "distilled", "held_out_networks": held_out,
                     "artifact": str(artifact.relative_to(out))})
    return {"runs": runs, **summary, "pool": {"size": pool_size, "held_out": held_out, "pretrain_on": source.name,
                                              "pretrain_epochs": epochs, "test_accuracy": np.asarray(pool.test_accuracy).tolist()}}
