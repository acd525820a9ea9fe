"""Dataset distillation (Wang et al. 2018) with learned soft labels (Sucholutsky & Schonlau 2021).

:func:`distill` learns a few synthetic images (and step sizes, and optionally label logits) such that
a few gradient steps on them train a network from a fixed or random initialisation (with
``validation=``, the set that scores best on held-out training data, :func:`keep_best`); :func:`evaluate`
and :func:`train_fresh` measure what they teach; :func:`random_real` and :func:`kmeans_centres` give
the baselines' starting images; :func:`save_artifact` writes the set as a plain ``.npz`` (:func:`load_artifact` reads it back).
:mod:`jaxviz.distill.baselines` has the rest of Wang et al.'s Table 1 (mean images, optimised real,
k-NN, herding, :func:`table1`) and the cross-architecture protocol; :mod:`jaxviz.distill.figures`
draws distilled sets, soft labels, accuracy and training curves; :mod:`jaxviz.distill.text` reads distilled
sentences (text dataset distillation) as their nearest real words. :func:`pretrained_pool` trains pools of
networks for ``init="pool"``: :func:`adaptation` (networks pretrained elsewhere adapted by a few
distilled images) and :func:`poisoning` (one step that makes them classify one class as another),
both measured on held-out networks (:func:`split_pool`, :func:`evaluate_pool`).
:func:`distribution_matching` (Zhao & Bilen 2023, :mod:`jaxviz.distill.matching`) condenses a data set by
matching mean embeddings under random networks instead of differentiating through training.
"""

from jaxviz.distill.adapt import ADAPT, Adaptation, adaptation, finetune, upscale
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
    keep_best,
    make_outer_step,
    over_networks,
    pool_indices,
    soft_cross_entropy,
)
from jaxviz.distill.evaluate import (
    Evaluation,
    evaluate,
    evaluate_pool,
    held_out_params,
    kmeans_centres,
    load_artifact,
    random_real,
    save_artifact,
    train_fresh,
)
from jaxviz.distill.figures import (
    accuracy_curve,
    adaptation_figure,
    distilled_figure,
    poisoning_figure,
    soft_label_figure,
    training_curve,
)
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
from jaxviz.distill.poison import POISON, PoisonEffect, Poisoning, poison_effect, poisoning
from jaxviz.distill.pools import Pool, check_attack, network_fingerprints, pool_accuracy, pool_params, pretrained_pool, split_pool
from jaxviz.distill.text import NearestWords, nearest_words, sentences_figure, sentences_markdown

__all__ = [
    "ADAPT", "POISON", "Adaptation", "Poisoning", "PoisonEffect", "Pool", "adaptation", "adaptation_figure", "check_attack",
    "evaluate_pool", "finetune", "held_out_params", "network_fingerprints", "poison_effect", "poisoning", "poisoning_figure",
    "pool_accuracy", "pool_indices", "pool_params", "pretrained_pool", "split_pool", "upscale",
    "INITS", "METHODS", "PAPER_MNIST", "STEP_SIZE_GRID", "CrossArchitecture", "DistillConfig", "DistillResult", "Distilled",
    "Evaluation", "Table1", "TrainedBaseline", "accuracy_curve", "check_config", "cross_architecture", "distill",
    "distilled_figure", "evaluate", "herding", "herding_images", "initial_distilled", "initial_labels", "inner_train",
    "keep_best", "kmeans_centres", "knn_accuracy", "load_artifact", "make_outer_step", "mean_images", "over_networks", "random_real", "save_artifact", "soft_cross_entropy",
    "soft_label_figure", "table1", "table1_markdown", "train_baseline", "train_fresh", "training_curve",
    "NearestWords", "nearest_words", "sentences_figure", "sentences_markdown",
    # distribution matching (Zhao & Bilen 2023)
    "MATCH_INITS", "MatchConfig", "dsa_augment", "check_match_config", "class_figure", "distribution_matching", "dm_loss",
    "dsa_params", "embed", "embedding_layer", "make_match_step",
]
