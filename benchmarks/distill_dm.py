"""Distribution matching (Zhao & Bilen 2023) vs random real images on Fashion-MNIST with the ConvNet.

Protocol (b) for every set: fresh ConvNets (width 128, instance norm) trained on the whole set as
one batch with SGD + momentum for the same number of epochs, test accuracy on the first
``--test-size`` test images (mean and std over ``--inits`` networks). The DM set starts from exactly
the random real images it is compared with (same seed). Writes ``OUT/dm-ipc<N>.json``, the two sets as
``.npz`` artifacts and a figure of the DM images per class. Resumes the DM run from its checkpoint.

    python benchmarks/distill_dm.py --ipc 1 --iterations 200 --real-per-class 16 --out results/dm
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxviz.data import load_dataset
from jaxviz.distill import MatchConfig, class_figure, distribution_matching, random_real, save_artifact, train_fresh
from jaxviz.models import convnet
from jaxviz.viz import save_png


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ipc", type=int, default=1, help="images per class")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--real-per-class", type=int, default=16)
    p.add_argument("--lr", type=float, default=MatchConfig().lr)
    p.add_argument("--epochs", type=int, default=200, help="protocol (b): full-batch SGD steps")
    p.add_argument("--inits", type=int, default=3, help="protocol (b): fresh networks")
    p.add_argument("--loop-inits", action="store_true", help="train the fresh networks one after another (keys fold_in(key(54321), j)) "
                   "instead of vmapped: faster on CPU, where vmapped convolutions run grouped")
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/dm")
    a = p.parse_args()
    out = Path(a.out)
    data = load_dataset("fashion_mnist")
    model = convnet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(a.seed))
    x_test, y_test = data.x_test[:a.test_size], data.y_test[:a.test_size]
    cfg = MatchConfig(images_per_class=a.ipc, iterations=a.iterations, real_per_class=a.real_per_class, lr=a.lr, seed=a.seed)
    t = time.perf_counter()
    dm = distribution_matching(model, data, cfg, cache=out / "cache")
    dm_seconds = time.perf_counter() - t
    real = dm._replace(distilled=dm.distilled._replace(x=random_real(data, np.asarray(dm.distilled.labels), seed=a.seed)),
                       history={}, seconds=0.0)
    rows = {}
    for name, res in (("random real", real), ("DM", dm)):
        t = time.perf_counter()
        if a.loop_inits:
            accs = np.concatenate([train_fresh(model, res.distilled.x, res.distilled.targets(10), x_test, y_test, epochs=a.epochs,
                                               num_inits=1, key=jax.random.fold_in(jax.random.key(54321), j)).accuracies
                                   for j in range(a.inits)])
        else:
            accs = train_fresh(model, res.distilled.x, res.distilled.targets(10), x_test, y_test, epochs=a.epochs, num_inits=a.inits).accuracies
        rows[name] = dict(mean=float(accs.mean()), std=float(accs.std()), accuracies=accs.tolist(), eval_seconds=time.perf_counter() - t)
        print(f"ipc {a.ipc} {name}: {100 * accs.mean():.1f} +/- {100 * accs.std():.1f} ({accs})", flush=True)
        save_artifact(out / f"{'dm' if name == 'DM' else 'real'}-ipc{a.ipc}.npz", res)
    save_png(out / f"dm-ipc{a.ipc}.png", class_figure(dm, data.class_names, title=f"DM, Fashion-MNIST, ConvNet, {a.ipc} per class, "
                                                     f"{a.iterations} iterations"))
    loss = dm.history.get("loss", np.zeros(0))
    summary = dict(args=vars(a), config=cfg._asdict(), dm_seconds=dm_seconds, dm_resumed_from=dm.resumed_from,
                   loss_first10=float(loss[:10].mean()) if loss.size else None, loss_last10=float(loss[-10:].mean()) if loss.size else None,
                   results=rows)
    (out / f"dm-ipc{a.ipc}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
