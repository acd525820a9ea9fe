"""Dataset distillation (Wang et al. 2018; soft labels of Sucholutsky & Schonlau 2021): learn a few
synthetic images and step sizes that train a network in a few gradient steps. Writes
OUT/distill/*.npz (images, labels, step sizes, fixed init), OUT/distill.json (test accuracy of the
distilled set and of random real images trained the same way, and Wang et al.'s Table 1 with every
baseline at the same image count: "runs" and "table") and OUT/index.html. Interrupted runs
resume from their checkpoint when the same command is run again. ``--method dm`` condenses by
distribution matching (Zhao & Bilen 2023) instead and compares with random real images under
protocol (b): fresh networks trained on each set with SGD."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "dataset distillation: a few synthetic images that train a network in a few steps"


def add_arguments(parser) -> None:
    parser.add_argument("--method", default="wang", choices=("wang", "dm"), help="wang: learn images and step sizes through "
                        "unrolled training (Wang et al. 2018); dm: distribution matching (Zhao & Bilen 2023) (default: %(default)s)")
    parser.add_argument("--dataset", default="mnist5k", help="mnist5k, fashion_mnist or digits (default: %(default)s)")
    parser.add_argument("--model", default="lenet", choices=("lenet", "convnet"), help="architecture (default: %(default)s)")
    parser.add_argument("--init", default="fixed", choices=("fixed", "random"), help="one fixed initialisation or fresh random ones each iteration")
    parser.add_argument("--images-per-class", type=int, default=1, help="distilled images per class and step (default: %(default)s)")
    parser.add_argument("--soft-labels", action="store_true", help="learn a label distribution per image")
    parser.add_argument("--num-images", type=int, default=None, help="with --soft-labels: images per step (may be fewer than the classes)")
    parser.add_argument("--steps", type=int, default=1, help="inner gradient steps per epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="inner epochs over the distilled steps (default: %(default)s)")
    parser.add_argument("--num-inits", type=int, default=4, help="random initialisations per iteration (default: %(default)s)")
    parser.add_argument("--inits-per-pass", type=int, default=None, help="vmap this many initialisations at a time and loop over the "
                        "groups (default: all at once)")
    parser.add_argument("--iterations", type=int, default=None, help="outer Adam iterations (default: the library's "
                        "DistillConfig; --quick: 40 with the tour's short-run recipe)")
    parser.add_argument("--batch-size", type=int, default=None, help="real images per iteration (default: DistillConfig's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the images and labels: Adam for wang, SGD for dm (default: the method config's)")
    parser.add_argument("--step-size-lr", type=float, default=None, help="Adam learning rate of the step sizes (default: DistillConfig's)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baselines (random real images and Table 1)")
    parser.add_argument("--real-per-class", type=int, default=None, help="--method dm: real images per class and iteration "
                        "(default: MatchConfig's; --quick: 16)")
    parser.add_argument("--fresh-epochs", type=int, default=None, help="--method dm: full-batch SGD steps of each fresh network "
                        "(default: 300, --quick: 50)")
    parser.add_argument("--fresh-inits", type=int, default=3, help="--method dm: fresh networks per set (default: %(default)s)")
    parser.add_argument("--table-sets", type=int, default=None, help="random real sets for Table 1's random/optimised real rows "
                        "(default: 20, 5 with --quick)")


def run(args) -> int:
    import jax

    from jaxviz.data import load_dataset
    from jaxviz.distill import DistillConfig, check_config
    from jaxviz.errors import JaxvizError
    from jaxviz.models import convnet, lenet
    from jaxviz.tour.distill import QUICK, study
    from jaxviz.viz import Report

    if args.method == "dm":
        return _run_dm(args)
    recipe = dict(iterations=args.iterations if args.iterations is not None else (40 if args.quick else None),
                  batch_size=args.batch_size, lr=args.lr, step_size_lr=args.step_size_lr)
    base = QUICK if args.quick else DistillConfig()  # --quick: the tour's short-run recipe; else the library's
    config = base._replace(images_per_class=args.images_per_class, num_images=args.num_images, steps=args.steps, epochs=args.epochs,
                           init=args.init, num_inits=args.num_inits, inits_per_pass=args.inits_per_pass,
                           soft_labels=args.soft_labels, seed=args.seed)
    config = config._replace(**{k: v for k, v in recipe.items() if v is not None})
    check_config(config)
    data = load_dataset(args.dataset)
    if data.x_train.shape[1] not in (28, 32):
        raise JaxvizError(f"--dataset {args.dataset} has {data.x_train.shape[1]} px images; lenet and convnet need 28 or 32 px "
                          "(mnist5k, fashion_mnist).")
    build = lenet if args.model == "lenet" else convnet
    model = build(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(args.seed))
    out = Path(args.out)
    report = Report(out, f"jaxviz distill: {model.name} on {data.name}")
    sets = args.table_sets if args.table_sets is not None else (5 if args.quick else 20)
    if sets < 1:
        raise JaxvizError(f"--table-sets must be at least 1; got {sets}.")
    table = None if args.no_baseline else dict(num_sets=sets, num_inits=10)
    summary = study(report, out, model, data, config, baseline=not args.no_baseline, cache=args.cache_dir,
                    progress=not args.no_progress, table=table)
    report.write()
    (out / "distill.json").write_text(json.dumps(summary, indent=2))
    if not args.no_progress:
        for r in summary["runs"]:
            print(f"{'random real' if r['baseline'] else 'distilled'}: test accuracy {r['test_accuracy']:.4f} ({r['artifact']})")
        if "table" in summary:
            print(summary["table"]["markdown"])
    return 0


def _run_dm(args) -> int:
    import jax
    import numpy as np

    from jaxviz.data import load_dataset
    from jaxviz.distill import MatchConfig, check_match_config, class_figure, distribution_matching, random_real, save_artifact, train_fresh
    from jaxviz.errors import JaxvizError
    from jaxviz.models import convnet, lenet
    from jaxviz.viz import Report

    config = MatchConfig(images_per_class=args.images_per_class, seed=args.seed)
    recipe = dict(iterations=args.iterations if args.iterations is not None else (40 if args.quick else None), lr=args.lr,
                  real_per_class=args.real_per_class if args.real_per_class is not None else (16 if args.quick else None))
    config = config._replace(**{k: v for k, v in recipe.items() if v is not None})
    check_match_config(config)
    epochs = args.fresh_epochs if args.fresh_epochs is not None else (50 if args.quick else 300)
    for name, v in (("--fresh-epochs", epochs), ("--fresh-inits", args.fresh_inits)):
        if v < 1:
            raise JaxvizError(f"{name} must be at least 1; got {v}.")
    data = load_dataset(args.dataset)
    if data.x_train.shape[1] not in (28, 32):
        raise JaxvizError(f"--dataset {args.dataset} has {data.x_train.shape[1]} px images; lenet and convnet need 28 or 32 px "
                          "(mnist5k, fashion_mnist).")
    build = lenet if args.model == "lenet" else convnet
    model = build(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(args.seed))
    out = Path(args.out)
    dm = distribution_matching(model, data, config, cache=args.cache_dir, progress=not args.no_progress)
    real = dm._replace(distilled=dm.distilled._replace(x=random_real(data, np.asarray(dm.distilled.labels), seed=args.seed)))
    rows, runs = [], []
    for what, r in (("distribution matching", dm), ("random real images", real)):
        ev = train_fresh(model, r.distilled.x, r.distilled.targets(model.num_classes), data.x_test, data.y_test, epochs=epochs,
                         num_inits=args.fresh_inits)
        tag = "dm" if r is dm else "random-real"
        artifact = save_artifact(out / "distill" / f"{tag}-{model.name}-{data.name}-ipc{config.images_per_class}.npz", r)
        rows.append({"set": what, "images": int(r.distilled.x.shape[1]), "test accuracy": ev.mean, "std": ev.std})
        runs.append({"dataset": data.name, "model": model.name, "method": "dm", "images_per_class": config.images_per_class,
                     "iterations": config.iterations, "protocol": "b", "fresh_epochs": epochs, "test_accuracy": ev.mean,
                     "test_accuracy_std": ev.std, "baseline": r is not dm, "artifact": str(artifact.relative_to(out))})
    report = Report(out, f"jaxviz distill --method dm: {model.name} on {data.name}")
    section = report.section("Distribution matching",
                             f"Zhao & Bilen (2023): {config.images_per_class} image(s) per class whose mean {model.name} embedding "
                             f"matches the real images' under a fresh random network each of {config.iterations} iterations "
                             f"({config.real_per_class} real images per class each). Test accuracy of {args.fresh_inits} fresh "
                             f"networks trained on each set for {epochs} full-batch SGD steps (protocol b).")
    section.figure(class_figure(dm, data.class_names), "distribution-matching images, one row per class",
                   name=f"dm-{model.name}-{data.name}")
    section.table(rows)
    report.write()
    (out / "distill.json").write_text(json.dumps({"runs": runs}, indent=2))
    if not args.no_progress:
        for r in runs:
            print(f"{'random real' if r['baseline'] else 'DM'}: test accuracy {r['test_accuracy']:.4f} ({r['artifact']})")
    return 0
