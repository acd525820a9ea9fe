"""Tour section: train (or load from cache) a small classifier and look at its filters and mistakes."""

from __future__ import annotations

import numpy as np

from jaxviz.data import load_dataset
from jaxviz.models import lenet
from jaxviz.tour.core import TourContext
from jaxviz.train import TrainConfig, predict, train
from jaxviz.viz import image_grid

# quick: MNIST-5k (>= 95% expected); default: Fashion-MNIST (>= 89% expected)
QUICK = ("mnist5k", TrainConfig(epochs=12, batch_size=64))
FULL = ("fashion_mnist", TrainConfig(epochs=10, batch_size=128, learning_rate=2e-3))


def classifier(ctx: TourContext) -> dict:
    name, config = QUICK if ctx.quick else FULL
    config = config._replace(seed=ctx.seed)
    data = load_dataset(name)
    ctx.log(f"[classifier] LeNet-5 on {name} ({len(data.x_train)} train / {len(data.x_test)} test, source {data.source})")
    result = train(lenet(data.x_train.shape[1:], class_names=data.class_names), data, config, cache=ctx.cache, progress=ctx.progress)
    ctx.shared["classifier"] = result.model
    ctx.shared["classifier_data"] = data
    ctx.log(f"[classifier] test accuracy {result.test_accuracy:.4f}" + (" (from cache)" if result.resumed_from else ""))

    kernels = np.asarray(result.model.params["conv1"]["kernel"][...])  # (5, 5, 1, 6)
    filters = np.moveaxis(kernels, -1, 0)
    filters = (filters - filters.min()) / (filters.max() - filters.min() + 1e-12)
    pred = predict(result.model, data.x_test[:32])
    labels = [f"{data.class_names[p][:9]}{'' if p == t else ' X'}" for p, t in zip(pred, data.y_test[:32])]
    section = ctx.report.section("Classifier", f"LeNet-5 trained on {name}: {result.steps} steps, test accuracy {result.test_accuracy:.2%}.")
    section.figure(image_grid(filters, scale=12, ncols=6), "conv1 filters (5x5), one tile per output channel", name="lenet-conv1-filters")
    section.figure(image_grid(data.x_test[:32], scale=3, ncols=8, labels=labels), "test images with predicted class (X: wrong)", name="lenet-predictions")
    section.table([{"dataset": name, "test accuracy": result.test_accuracy, "steps": result.steps, "train seconds": result.seconds}])
    return {"classifier": {"model": "lenet", "dataset": name, "test_accuracy": result.test_accuracy, "steps": result.steps, "checkpoint": result.checkpoint_dir}}
