"""Tour section: train (or load from cache) a small classifier and look at its filters and mistakes."""

from __future__ import annotations

import numpy as np

from jaxviz.tour.core import TourContext
from jaxviz.train import predict
from jaxviz.viz import image_grid


def classifier(ctx: TourContext) -> dict:
    model, data, result = ctx.classifier()
    name = data.name
    ctx.log(f"[classifier] test accuracy {result.test_accuracy:.4f}" + (" (from cache)" if result.resumed_from else ""))

    kernels = np.asarray(model.params["conv1"]["kernel"][...])  # (5, 5, 1, 6)
    filters = np.moveaxis(kernels, -1, 0)
    filters = (filters - filters.min()) / (filters.max() - filters.min() + 1e-12)
    pred = predict(model, data.x_test[:32])
    labels = [f"{data.class_names[p][:9]}{'' if p == t else ' X'}" for p, t in zip(pred, data.y_test[:32])]
    section = ctx.report.section("Classifier", f"LeNet-5 trained on {name}: {result.steps} steps, test accuracy {result.test_accuracy:.2%}.")
    section.figure(image_grid(filters, scale=12, ncols=6), "conv1 filters (5x5), one tile per output channel", name="lenet-conv1-filters")
    section.figure(image_grid(data.x_test[:32], scale=3, ncols=8, labels=labels), "test images with predicted class (X: wrong)", name="lenet-predictions")
    section.table([{"dataset": name, "test accuracy": result.test_accuracy, "steps": result.steps, "train seconds": result.seconds}])
    return {"classifier": {"model": "lenet", "dataset": name, "test_accuracy": result.test_accuracy, "steps": result.steps, "checkpoint": result.checkpoint_dir}}
