"""Train a small zoo model on a data set with optax; checkpoints are resumable (rerun the same
command after an interruption)."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "train a small zoo model (lenet, convnet) on a data set"


def add_arguments(parser) -> None:
    from jaxviz.data import DATASETS
    from jaxviz.models import TRAINABLE
    from jaxviz.train import TrainConfig

    d = TrainConfig()
    parser.add_argument("--model", choices=sorted(TRAINABLE), default="lenet")
    parser.add_argument("--dataset", choices=DATASETS, default="fashion_mnist")
    parser.add_argument("--data-dir", default=None, help="folder holding the data set's files (IDX for (fashion_)mnist)")
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.learning_rate)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)


def run(args) -> int:
    from jaxviz.data import load_dataset
    from jaxviz.errors import JaxvizError
    from jaxviz.models import get_model
    from jaxviz.train import TrainConfig, train

    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise JaxvizError("--epochs and --batch-size must be >= 1 and --lr > 0")
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    model = get_model(args.model, data.x_train.shape[1:], data.class_names)
    epochs = 1 if args.quick else args.epochs
    config = TrainConfig(epochs=epochs, batch_size=args.batch_size, learning_rate=args.lr, weight_decay=args.weight_decay, seed=args.seed)
    result = train(model, data, config, cache=args.cache_dir, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"model": args.model, "dataset": data.name, "test_accuracy": result.test_accuracy, "steps": result.steps,
              "seconds": result.seconds, "checkpoint": result.checkpoint_dir, "config": config._asdict()}
    (out / "train.json").write_text(json.dumps(record, indent=2))
    print(f"{args.model} on {data.name}: test accuracy {result.test_accuracy:.4f} after {result.steps} steps; checkpoint {result.checkpoint_dir}")
    return 0
