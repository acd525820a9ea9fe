"""Tour section "Dataset distillation": a few synthetic MNIST-5k images that train a fixed-init LeNet in
three gradient steps (Wang et al. 2018), against random real images trained with learned step sizes too."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxviz.data import Dataset
from jaxviz.distill import DistillConfig, DistillResult, distill, evaluate, random_real, save_artifact
from jaxviz.models import Model
from jaxviz.tour.core import TourContext
from jaxviz.viz import Report, image_grid

QUICK = DistillConfig(images_per_class=1, steps=1, epochs=3, iterations=60, batch_size=256)
FULL = QUICK._replace(iterations=300)


def distilled_figure(result: DistillResult, class_names) -> np.ndarray:
    """Distilled images, one row per inner step, each labelled with its class (or top-3 soft classes) and the step's sizes."""
    d = result.distilled
    x = np.asarray(d.x)
    steps, n = x.shape[:2]
    labels = np.asarray(d.labels)
    lrs = np.asarray(d.lrs).reshape(-1, steps)  # (epochs, steps)
    tiles = []
    for s in range(steps):
        for i in range(n):
            if labels.ndim == 3:
                p = np.exp(labels[s, i] - labels[s, i].max())
                p /= p.sum()
                top = np.argsort(-p)[:3]
                text = " ".join(f"{class_names[c][:3]}{p[c]:.1f}" for c in top)
            else:
                text = str(class_names[labels[s, i]])[:9]
            tiles.append(text + (f" lr {','.join(f'{v:.2f}' for v in lrs[:, s])}" if i == 0 else ""))
    lo, hi = np.percentile(x, [1, 99])
    shown = np.clip((x - lo) / (hi - lo + 1e-12), 0, 1).reshape(steps * n, *x.shape[2:])
    return image_grid(shown, ncols=n, labels=tiles, scale=3)


def study(report: Report, out: Path, model: Model, data: Dataset, config: DistillConfig, *, baseline: bool = True,
          cache=None, progress: bool = True, num_inits: int = 10) -> list[dict]:
    """Distil, evaluate under protocol (a), optionally run the random-real baseline; add a section; return the runs."""
    result = distill(model, data, config, cache=cache, progress=progress)
    runs = [(f"distilled ({'soft' if config.soft_labels else 'hard'} labels)", result)]
    if baseline and not config.soft_labels:  # soft labels have no real-image counterpart
        base = random_real(data, np.asarray(result.distilled.labels), seed=config.seed)
        runs.append(("random real images (learned step sizes)",
                     distill(model, data, config._replace(learn_images=False), images=base, cache=cache, progress=progress)))
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
    section = report.section(
        "Dataset distillation",
        f"Wang et al. (2018): {model.name} on {data.name}, {config.init} initialisation; {config.iterations} outer Adam "
        "iterations learn the images and one step size per inner step and epoch. Accuracy is on the test split after the "
        "learned inner steps (mean and std over 10 fresh initialisations for random init).")
    section.figure(distilled_figure(result, data.class_names), "distilled images (rows: inner steps) with their step sizes per epoch",
                   name=f"distilled-{model.name}-{data.name}")
    section.table(rows)
    return entries


def distillation(ctx: TourContext) -> dict:
    from jaxviz.data import load_dataset
    from jaxviz.models import lenet

    data = load_dataset("mnist5k")
    model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(ctx.seed))
    config = (QUICK if ctx.quick else FULL)._replace(seed=ctx.seed)
    runs = study(ctx.report, ctx.out, model, data, config, cache=ctx.cache, progress=ctx.progress)
    for r in runs:
        ctx.log(f"[distill] {'baseline' if r['baseline'] else 'distilled'}: test accuracy {r['test_accuracy']:.3f}")
    return {"distill": {"runs": runs}}
