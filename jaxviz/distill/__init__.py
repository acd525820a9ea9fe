"""Dataset distillation (Wang et al. 2018) with learned soft labels (Sucholutsky & Schonlau 2021).

:func:`distill` learns a few synthetic images (and step sizes, and optionally label logits) such that
a few gradient steps on them train a network from a fixed or random initialisation; :func:`evaluate`
and :func:`train_fresh` measure what they teach; :func:`random_real` and :func:`kmeans_centres` give
the baselines' starting images; :func:`save_artifact` writes the set as a plain ``.npz``.
"""

from jaxviz.distill.core import (
    INITS,
    DistillConfig,
    Distilled,
    DistillResult,
    check_config,
    distill,
    initial_distilled,
    initial_labels,
    inner_train,
    make_outer_step,
    soft_cross_entropy,
)
from jaxviz.distill.evaluate import Evaluation, evaluate, kmeans_centres, random_real, save_artifact, train_fresh

__all__ = [
    "INITS", "DistillConfig", "DistillResult", "Distilled", "Evaluation", "check_config", "distill", "evaluate", "initial_distilled",
    "initial_labels", "inner_train", "kmeans_centres", "make_outer_step", "random_real", "save_artifact",
    "soft_cross_entropy", "train_fresh",
]
