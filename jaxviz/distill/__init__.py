"""Dataset distillation (Wang et al. 2018) with learned soft labels (Sucholutsky & Schonlau 2021).

:func:`distill` learns a few synthetic images (and step sizes, and optionally label logits) such that
a few gradient steps on them train a network from a fixed or random initialisation; :func:`evaluate`
and :func:`train_fresh` measure what they teach; :func:`random_real` and :func:`kmeans_centres` give
the baselines' starting images; :func:`save_artifact` writes the set as a plain ``.npz``.
:mod:`jaxviz.distill.baselines` has the rest of Wang et al.'s Table 1 (mean images, optimised real,
k-NN, herding, :func:`table1`) and the cross-architecture protocol; :mod:`jaxviz.distill.figures`
draws distilled sets, soft labels and accuracy curves. :func:`distribution_matching` (Zhao & Bilen
2023, :mod:`jaxviz.distill.matching`) condenses a data set by matching mean embeddings under random
networks instead of differentiating through training.
"""

from jaxviz.distill.baselines import (
    METHODS,
    PAPER_MNIST,
    STEP_SIZE_GRID,
    CrossArchitecture,
    Table1,
    TrainedBaseline,
    cross_architecture,
    herding,
    herding_images,
    knn_accuracy,
    mean_images,
    table1,
    table1_markdown,
    train_baseline,
)
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
from jaxviz.distill.figures import accuracy_curve, distilled_figure, soft_label_figure
from jaxviz.distill.matching import (
    MATCH_INITS,
    MatchConfig,
    check_match_config,
    class_figure,
    distribution_matching,
    dm_loss,
    dsa_augment,
    dsa_params,
    embed,
    embedding_layer,
    make_match_step,
)

__all__ = [
    "INITS", "METHODS", "PAPER_MNIST", "STEP_SIZE_GRID", "CrossArchitecture", "DistillConfig", "DistillResult", "Distilled",
    "Evaluation", "Table1", "TrainedBaseline", "accuracy_curve", "check_config", "cross_architecture", "distill",
    "distilled_figure", "evaluate", "herding", "herding_images", "initial_distilled", "initial_labels", "inner_train",
    "kmeans_centres", "knn_accuracy", "make_outer_step", "mean_images", "random_real", "save_artifact", "soft_cross_entropy",
    "soft_label_figure", "table1", "table1_markdown", "train_baseline", "train_fresh",
    # distribution matching (Zhao & Bilen 2023)
    "MATCH_INITS", "MatchConfig", "dsa_augment", "check_match_config", "class_figure", "distribution_matching", "dm_loss",
    "dsa_params", "embed", "embedding_layer", "make_match_step",
]
