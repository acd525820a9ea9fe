"""Training small zoo models with optax, with resumable orbax checkpoints."""

from jaxviz.train.checkpoints import Checkpointer, cache_dir, run_id
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
    "Checkpointer", "TrainConfig", "TrainResult", "accuracy", "cache_dir", "cross_entropy", "load_trained",
    "make_optimizer", "make_train_step", "predict", "run_id", "train",
]
