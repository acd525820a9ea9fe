"""Tour section "Dataset distillation": a few synthetic MNIST-5k images that train a fixed-init LeNet in
three gradient steps (Wang et al. 2018), against random real images trained with learned step sizes too,
and Wang et al.'s Table 1 (every baseline at the same image count) beside the paper's MNIST numbers."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxviz.data import Dataset
from jaxviz.distill import (
    DistillConfig,
    distill,
    distilled_figure,
    evaluate,
    random_real,
    save_artifact,
    soft_label_figure,
    table1,
    training_curve,
)
from jaxviz.models import Model
from jaxviz.tour.core import TourContext
from jaxviz.viz import Report

# Quick mode: larger, noisier Adam steps (step sizes grow within tens of iterations) than the library's
# recipe, which needs thousands of iterations. Full mode: the library's recipe for 3000 iterations (about
# 80%; 86% at 8000, benchmarks/RESULTS.md), checkpointed in the cache so a second tour reuses it.
QUICK = DistillConfig(images_per_class=1, steps=1, epochs=3, iterations=60, batch_size=256, lr=0.02, step_size_lr=0.2, beta1=0.9)
FULL = DistillConfig(images_per_class=1, steps=1, epochs=3, iterations=3000)
BASELINE_ITERATIONS = 500  # the random-real baseline learns only its step sizes, which settle within a few hundred
TABLE_QUICK = dict(num_sets=5, num_inits=10)  # Table 1 baselines: random real sets drawn (the best 20% are "optimised")
TABLE_FULL = dict(num_sets=20, num_inits=10)


def study(report: Report, out: Path, model: Model, data: Dataset, config: DistillConfig, *, baseline: bool = True,
          cache=None, progress: bool = True, num_inits: int = 10, table: dict | None = None, eval_every: int | None = None,
          validation: tuple | None = None) -> dict:
    """Distil, evaluate under protocol (a), optionally run the random-real baseline and Table 1; add a section.

    With ``eval_every``, the distilled run's test accuracy is measured every so many iterations (shown
    on the progress bar, drawn with the training curve and returned as the run's ``"test_curve"``).
    With ``validation`` (held-out training ``(x, y)``), the distilled set is the one that scored best
    on it at those measurements (``"selected"`` in the run's entry says when, and at what accuracy).

    Returns:
      ``{"runs": [...]}`` (one entry per set shown) and, with ``table`` (keyword arguments of
      :func:`~jaxviz.distill.table1`) and hard labels, ``"table": {"rows", "markdown"}``.
    """
    watch = {} if eval_every is None else dict(test=(data.x_test, data.y_test), eval_every=eval_every)
    result = distill(model, data, config, cache=cache, progress=progress, validation=validation, **watch)
    runs = [(f"distilled ({'soft' if config.soft_labels else 'hard'} labels)", result)]
    if baseline and not config.soft_labels:  # soft labels have no real-image counterpart
        base = random_real(data, np.asarray(result.distilled.labels), seed=config.seed)
        runs.append(("random real images (learned step sizes)",
                     distill(model, data, config._replace(learn_images=False, iterations=min(config.iterations, BASELINE_ITERATIONS)),
                             images=base, cache=cache, progress=progress)))
    rows, entries = [], []
    for what, r in runs:
        ev = evaluate(model, r, data.x_test, data.y_test, num_inits=num_inits)
        tag = "distilled" if r is result else "random-real"
        artifact = save_artifact(out / "distill" / f"{tag}-{model.name}-{data.name}-{config.init}.npz", r)
        n = r.distilled.x.shape[1]
        rows.append({"set": what, "images": n * config.steps, "steps x epochs": f"{config.steps} x {config.epochs}",
                     "init": config.init, "test accuracy": ev.mean, "std": ev.std, "iterations": config.iterations,
                     "seconds": r.seconds})
        entries.append({"dataset": data.name, "model": model.name, "init": config.init,
                        "images_per_class": None if config.soft_labels else config.images_per_class, "steps": config.steps,
                        "epochs": config.epochs, "soft_labels": config.soft_labels, "test_accuracy": ev.mean,
                        "test_accuracy_std": ev.std, "baseline": r is not result,
                        "artifact": str(artifact.relative_to(out))})
        if r.selected is not None:
            entries[-1]["selected"] = r.selected
        if r.test_history is not None:
            entries[-1]["test_curve"] = {k: v.tolist() for k, v in r.test_history.items()}
    section = report.section(
        "Dataset distillation",
        f"Wang et al. (2018): {model.name} on {data.name}, {config.init} initialisation; {config.iterations} outer Adam "
        "iterations learn the images and one step size per inner step and epoch. Accuracy is on the test split after the "
        "learned inner steps (mean and std over 10 fresh initialisations for random init).")
    section.figure(distilled_figure(result, data.class_names), "distilled images (rows: inner steps) with their step sizes per epoch",
                   name=f"distilled-{model.name}-{data.name}")
    if config.soft_labels:
        section.figure(soft_label_figure(result, data.class_names), "each distilled image's top-3 learned label probabilities",
                       name=f"soft-labels-{model.name}-{data.name}")
    if len(result.history.get("loss", ())):  # a finished run restored from a checkpoint without metrics has none
        section.figure(training_curve(result), "outer loss and accuracy during distillation", name=f"curve-{model.name}-{data.name}")
    section.table(rows)
    summary = {"runs": entries}
    if table is not None:  # a soft-label set against hard-label baselines in the same slots
        t = table1(model, data, result, seed=config.seed, **table)
        section.text("Table 1 of Wang et al. (2018) on this data, every baseline with the same images and inner steps: real "
                     "images (random sets, the best 20% of them by training-split accuracy, k-means centres, class means, herding "
                     "in pixel space), each trained with its best constant step size from a grid chosen on the training split, and "
                     "k-NN classification with random real images or k-means centres as references (best of l1/l2, K in {1, 3}). "
                     "The paper's column is full MNIST with 100 images (10 steps x 3 epochs); its baselines use random "
                     "initialisations.")
        section.table([{k: r[k] for k in ("method", "init", "images", "accuracy", "std", "note")} for r in t.rows])
        section.code(t.markdown)
        summary["table"] = {"rows": t.rows, "markdown": t.markdown}
    return summary


def distillation(ctx: TourContext) -> dict:
    from jaxviz.data import load_dataset
    from jaxviz.models import lenet

    data = load_dataset("mnist5k")
    model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(ctx.seed))
    config = (QUICK if ctx.quick else FULL)._replace(seed=ctx.seed)
    summary = study(ctx.report, ctx.out, model, data, config, cache=ctx.cache, progress=ctx.progress,
                    table=TABLE_QUICK if ctx.quick else TABLE_FULL)
    for r in summary["runs"]:
        ctx.log(f"[distill] {'baseline' if r['baseline'] else 'distilled'}: test accuracy {r['test_accuracy']:.3f}")
    ctx.log("[distill] Table 1\n" + summary["table"]["markdown"])
    return {"distill": summary}
