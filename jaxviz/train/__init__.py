"""Training with optax: one resumable loop (orbax checkpoints, progress, NaN guard) and classifier training on it."""

from jaxviz.train.checkpoints import Checkpointer, cache_dir, run_id
from jaxviz.train.loop import LoopResult, run_loop
from jaxviz.train.trainer import (
    TrainConfig,
    TrainResult,
    accuracy,
    cross_entropy,
    load_trained,
    make_optimizer,
    make_train_step,
    predict,
    train,
)

__all__ = [
    "Checkpointer", "LoopResult", "TrainConfig", "TrainResult", "accuracy", "cache_dir", "cross_entropy", "load_trained",
    "make_optimizer", "make_train_step", "predict", "run_id", "run_loop", "train",
]
