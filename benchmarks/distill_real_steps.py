"""Plain SGD on real images within the inner-step budget of random-init dataset distillation.

Wang et al. (2018) train a fresh LeNet with 30 gradient steps (10 steps x 3 epochs) on 100
distilled images. This measures what the same number of plain SGD steps on minibatches of *real*
training images gives a fresh LeNet: constant step sizes from a grid, minibatches drawn at random
from the whole training split, test accuracy after 30, 90 and 150 steps (mean +/- std over fresh
initialisations). It puts the random-init rows of ``## distill-table`` in scale: how many steps of
real data a distilled set is worth, and how many it takes to reach k-NN on k-means centres.
Section ``## distill-real-steps`` of benchmarks/RESULTS.md and ``results/distill-real-steps.json``.

    python benchmarks/distill_real_steps.py [--datasets mnist5k fashion_mnist] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.data import load_dataset
from jaxviz.models import lenet
from jaxviz.train import predict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, RESULTS_MD, describe, machine_description, replace_section  # noqa: E402

MARKS = (30, 90, 150)
BATCHES = (100, 1000)
STEP_SIZES = (0.03, 0.1, 0.3)


@functools.partial(jax.jit, static_argnums=(0, 5, 6))
def sgd(model, params, x, y, key, steps: int, batch: int, lr):
    """``params`` after ``steps`` plain SGD steps at ``lr`` on minibatches of ``batch`` drawn from ``(x, y)``."""
    def step(p, k):
        i = jax.random.randint(k, (batch,), 0, x.shape[0])
        g = jax.grad(lambda q: optax.softmax_cross_entropy_with_integer_labels(model.apply(q, x[i]), y[i]).mean())(p)
        return jax.tree.map(lambda a, b: a - lr * b, p, g), None

    return jax.lax.scan(step, params, jax.random.split(key, steps))[0]


def curves(name: str, inits: int, marks: tuple[int, ...]) -> list[dict]:
    """One row per (batch, step size): test accuracy at each of ``marks`` over ``inits`` fresh LeNets."""
    data = load_dataset(name)
    model = lenet(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0))
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    rows = []
    for batch in BATCHES:
        for lr in STEP_SIZES:
            acc = np.zeros((inits, len(marks)))
            for s in range(inits):
                params, done = model.init(jax.random.key(1000 + s)), 0
                for j, m in enumerate(marks):
                    params = sgd(model, params, x, y, jax.random.fold_in(jax.random.key(s), m), m - done, batch, lr)
                    done = m
                    acc[s, j] = np.mean(predict(model, data.x_test, params=params) == data.y_test)
            rows.append({"dataset": name, "batch": batch, "step_size": lr, "steps": list(marks),
                         "mean": acc.mean(0).tolist(), "std": acc.std(0).tolist()})
            print(f"{name} batch {batch} step size {lr}: " + ", ".join(f"{m} steps {a:.3f}" for m, a in zip(marks, acc.mean(0))), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    marks = rows[0]["steps"]
    lines = ["| data set | real images per step | step size | " + " | ".join(f"{m} steps" for m in marks) + " |",
             "|---|---:|---:|" + "---:|" * len(marks)]
    best = {}  # the best mean at each mark, per data set
    for r in rows:
        best[r["dataset"]] = [max(pair) for pair in zip(r["mean"], best.get(r["dataset"], r["mean"]))]
    for r in rows:
        cells = [(f"**{m * 100:.1f}**" if m == b else f"{m * 100:.1f}") + f" +/- {s * 100:.1f}"
                 for m, s, b in zip(r["mean"], r["std"], best[r["dataset"]])]
        lines.append(f"| {r['dataset']} | {r['batch']} | {r['step_size']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["mnist5k", "fashion_mnist"])
    p.add_argument("--inits", type=int, default=5, help="fresh initialisations per cell (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a smoke test: 2 inits, 3 and 6 steps, no RESULTS.md")
    p.add_argument("--out", type=Path, default=None, help="the JSON file (default results/distill-real-steps.json)")
    args = p.parse_args()
    started = time.time()
    inits, marks = (2, (3, 6)) if args.quick else (args.inits, MARKS)
    rows = [r for name in args.datasets for r in curves(name, inits, marks)]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    record = {"date": date, "machine": machine_description(), "inits": inits, "rows": rows, "seconds": time.time() - started}
    out = args.out or RESULTS_DIR / ("distill-real-steps-quick.json" if args.quick else "distill-real-steps.json")
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(rows))
    if args.quick:
        return
    section = "\n".join([
        "## distill-real-steps", "",
        f"Generated by `python benchmarks/distill_real_steps.py` on {date}. Do not edit by hand: the script rewrites this section.", "",
        f"Machine: {describe(record['machine'])}.", "",
        f"Fresh LeNets (`model.init`, {inits} initialisations per cell) trained with plain SGD on minibatches of real training "
        "images drawn at random from the whole training split, constant step size; test accuracy (%) on the whole test split, "
        "mean +/- std, the best of each column in bold. Random-init distillation (`## distill-table`) gets 30 steps "
        f"(10 x 3 epochs) on 100 images. Whole run {record['seconds']:.0f} s.", "",
        markdown(rows),
    ])
    RESULTS_MD.write_text(replace_section(RESULTS_MD.read_text(), "distill-real-steps", section + "\n"))


if __name__ == "__main__":
    main()
