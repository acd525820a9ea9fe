"""The tour's context: where a section writes, its settings, and the expensive resources sections share.

Each section is a function ``section(ctx) -> dict`` that adds its figures and tables to
``ctx.report`` and returns its entries for ``summary.json``. A section that needs the trained
classifier or the ImageNet photos asks for them with :meth:`TourContext.classifier` /
:meth:`TourContext.imagenet`: each is built on first use and reused, so sections do not depend on
running in any particular order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxviz.data import Dataset, load_dataset, photo, resize, to_rgb
from jaxviz.models import Model, lenet, squeezenet
from jaxviz.train import TrainConfig, TrainResult, train
from jaxviz.viz import Report

# quick: MNIST-5k (>= 95% expected); default: Fashion-MNIST (>= 89% expected)
CLASSIFIER_QUICK = ("mnist5k", TrainConfig(epochs=12, batch_size=64))
CLASSIFIER_FULL = ("fashion_mnist", TrainConfig(epochs=10, batch_size=128, learning_rate=2e-3))
PHOTOS_FULL = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")
PHOTOS_QUICK = ("chelsea", "coffee")


class Classifier(NamedTuple):
    """LeNet-5 trained (or loaded from the cache) on the tour's data set."""

    model: Model
    data: Dataset
    result: TrainResult


class ImageNet(NamedTuple):
    """SqueezeNet 1.1 and the bundled photos as 227 px RGB crops, by name."""

    model: Model
    photos: dict[str, np.ndarray]


@dataclasses.dataclass
class TourContext:
    out: Path
    report: Report
    quick: bool = False
    seed: int = 0
    cache: str | None = None
    progress: bool = True
    # built resources by name ("classifier", "imagenet"); a caller may put its own in (tests, notebooks)
    resources: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def log(self, message: str) -> None:
        if self.progress:
            print(message, flush=True)

    def classifier(self) -> Classifier:
        """LeNet-5 on MNIST-5k (quick) or Fashion-MNIST, trained once per tour (and cached on disk)."""
        if "classifier" not in self.resources:
            name, config = CLASSIFIER_QUICK if self.quick else CLASSIFIER_FULL
            data = load_dataset(name)
            self.log(f"[classifier] LeNet-5 on {name} ({len(data.x_train)} train / {len(data.x_test)} test, source {data.source})")
            result = train(lenet(data.x_train.shape[1:], class_names=data.class_names), data,
                           config._replace(seed=self.seed), cache=self.cache, progress=self.progress)
            self.resources["classifier"] = Classifier(result.model, data, result)
        return self.resources["classifier"]

    def imagenet(self) -> ImageNet:
        """SqueezeNet 1.1 with its ImageNet weights and the photos the tour classifies."""
        if "imagenet" not in self.resources:
            names = PHOTOS_QUICK if self.quick else PHOTOS_FULL
            self.resources["imagenet"] = ImageNet(squeezenet(), {n: resize(to_rgb(photo(n)), 227) for n in names})
        return self.resources["imagenet"]


Section = Callable[[TourContext], dict]
