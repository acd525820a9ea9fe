"""Tour section: classify the bundled photos with SqueezeNet 1.1 and show its first-layer filters."""

from __future__ import annotations

import jax
import numpy as np

from jaxviz.tour.core import TourContext
from jaxviz.viz import image_grid


def imagenet(ctx: TourContext) -> dict:
    model, photos = ctx.imagenet()
    names = tuple(photos)
    x = np.stack(list(photos.values()))
    probs = np.asarray(jax.jit(lambda m, x: jax.nn.softmax(m(x)))(model, x))
    results, rows, labels = [], [], []
    for name, p in zip(names, probs):
        top = np.argsort(-p)[:5]
        top5 = [[int(c), model.class_names[c], float(p[c])] for c in top]
        results.append({"image": name, "top5": top5})
        rows.append({"photo": name, **{f"#{i + 1}": f"{n} ({c}) {q:.3f}" for i, (c, n, q) in enumerate(top5)}})
        labels.append(f"{top5[0][1][:14]} {top5[0][2]:.2f}")
        ctx.log(f"[imagenet] {name}: {top5[0][1]} ({top5[0][0]}) p={top5[0][2]:.3f}")
    section = ctx.report.section("ImageNet classification", "SqueezeNet 1.1 (Caffe ImageNet weights) on the bundled photos, 227 px centre crops.")
    section.figure(image_grid(x, ncols=len(names), labels=labels), "photos with SqueezeNet's top class", name="squeezenet-photos")
    section.table(rows, caption="top-5 classes (class id) and probability")
    kernels = np.moveaxis(np.asarray(model.params["conv1"]["kernel"][...])[..., ::-1, :], -1, 0)  # BGR -> RGB
    kernels = (kernels - kernels.min()) / (kernels.max() - kernels.min())
    section.figure(image_grid(kernels, scale=10, ncols=16, pad=1), "conv1 filters (3x3x3, RGB), one tile per channel", name="squeezenet-conv1-filters")
    return {"imagenet": results}
