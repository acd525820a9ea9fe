"""Dataset distillation (Wang et al. 2018; soft labels of Sucholutsky & Schonlau 2021): learn a few
synthetic images and step sizes that train a network in a few gradient steps. Writes
OUT/distill/*.npz (images, labels, step sizes, fixed init), OUT/distill.json (test accuracy of the
distilled set and of random real images trained the same way, and Wang et al.'s Table 1 with every
baseline at the same image count: "runs" and "table"; "config": the DistillConfig that ran) and OUT/index.html. Interrupted runs
resume from their checkpoint when the same command is run again. Text (Sucholutsky & Schonlau 2021):
`--dataset rotten_tomatoes --model textcnn` distils synthetic sentences of GloVe vectors for Kim's
text CNN and shows them as their nearest real words (OUT/sentences.md); Table 1 is for images only.

With --init pool a pool of networks is pretrained (on --pretrain-on, upscaled if smaller: Wang et al.'s
adaptation) and distilled on; --poison A:B instead makes networks pretrained on --dataset classify
class A as B after the learned step (malicious data poisoning). Both measure on held-out networks of
the pool and write "adaptation" or "poisoning" rows to OUT/distill.json. --method dm condenses by distribution matching (Zhao & Bilen 2023) instead and
compares with random real images under protocol (b): fresh networks trained on each set with SGD."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "dataset distillation: a few synthetic images that train a network in a few steps"


def add_arguments(parser) -> None:
    parser.add_argument("--method", default="wang", choices=("wang", "dm"), help="wang: learn images and step sizes through "
                        "unrolled training (Wang et al. 2018); dm: distribution matching (Zhao & Bilen 2023) (default: %(default)s)")
    parser.add_argument("--dataset", default="mnist5k", help="mnist5k, fashion_mnist, digits, or rotten_tomatoes (reviews as "
                        "GloVe matrices, with --model textcnn) (default: %(default)s)")
    parser.add_argument("--model", default="lenet", choices=("lenet", "convnet", "textcnn"), help="architecture (default: %(default)s)")
    parser.add_argument("--init", default="fixed", choices=("fixed", "random", "pool"), help="one fixed initialisation, fresh random ones each "
                        "iteration, or networks sampled from a pool of pretrained ones")
    parser.add_argument("--images-per-class", type=int, default=1, help="distilled images per class and step (default: %(default)s)")
    parser.add_argument("--soft-labels", action="store_true", help="learn a label distribution per image")
    parser.add_argument("--num-images", type=int, default=None, help="with --soft-labels: images per step (may be fewer than the classes)")
    parser.add_argument("--steps", type=int, default=1, help="inner gradient steps per epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="inner epochs over the distilled steps (default: %(default)s)")
    parser.add_argument("--num-inits", type=int, default=4, help="random initialisations per iteration (default: %(default)s)")
    parser.add_argument("--inits-per-pass", type=int, default=None, help="vmap this many initialisations at a time and loop over the "
                        "groups (default: all at once on a GPU/TPU, one at a time on CPU)")
    parser.add_argument("--iterations", type=int, default=None, help="outer Adam iterations (default: the library's "
                        "DistillConfig; --quick: 40 with the tour's short-run recipe)")
    parser.add_argument("--batch-size", type=int, default=None, help="real images per iteration (default: DistillConfig's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the images and labels: Adam for wang, SGD for dm (default: the method config's)")
    parser.add_argument("--step-size-lr", type=float, default=None, help="Adam learning rate of the step sizes (default: DistillConfig's)")
    parser.add_argument("--initial-step-size", type=float, default=None, help="the inner step size every learned step starts from "
                        "(default: DistillConfig's, 0.02)")
    parser.add_argument("--eval-every", type=int, default=500, help="test accuracy of the current set every N iterations, on the "
                        "progress bar and in distill.json's test_curve; 0: only at the end (default: %(default)s)")
    parser.add_argument("--validation", type=int, default=0, metavar="N", help="hold N training examples out and keep the set "
                        "that scores best on them at each --eval-every measurement instead of the last one (default: none)")
    parser.add_argument("--pretrain-on", default=None, help="--init pool: the data set the pool is pretrained on, e.g. digits "
                        "(upscaled to the model's size; default: --dataset)")
    parser.add_argument("--poison", default=None, metavar="A:B", help="distil images whose learned steps make networks pretrained on "
                        "--dataset classify class A as class B (implies --init pool)")
    parser.add_argument("--pool-size", type=int, default=16, help="pretrained networks in the pool (default: %(default)s)")
    parser.add_argument("--held-out", type=int, default=6, help="networks of the pool kept out of distillation to measure on "
                        "(default: %(default)s)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="epochs of pretraining per network (default: about 200 "
                        "minibatches of 128)")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="adaptation: epochs of the full fine-tuning baseline "
                        "(default: %(default)s)")
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
    import numpy as np

    from jaxviz.data import load_dataset, load_rotten_tomatoes, split_validation
    from jaxviz.distill import DistillConfig, check_config, sentences_figure, sentences_markdown
    from jaxviz.errors import JaxvizError
    from jaxviz.models import convnet, lenet, textcnn
    from jaxviz.tour.distill import QUICK, study
    from jaxviz.viz import Report

    if args.method == "dm":
        return _run_dm(args)
    recipe = dict(iterations=args.iterations if args.iterations is not None else (40 if args.quick else None),
                  batch_size=args.batch_size, lr=args.lr, step_size_lr=args.step_size_lr,
                  initial_step_size=args.initial_step_size)
    base = QUICK if args.quick else DistillConfig()  # --quick: the tour's short-run recipe; else the library's
    config = base._replace(images_per_class=args.images_per_class, num_images=args.num_images, steps=args.steps, epochs=args.epochs,
                           init=args.init, num_inits=args.num_inits, inits_per_pass=args.inits_per_pass,
                           soft_labels=args.soft_labels, seed=args.seed)
    config = config._replace(**{k: v for k, v in recipe.items() if v is not None})
    attack = _attack(args.poison)
    if attack is not None:
        config = config._replace(init="pool")
    if config.init != "pool" and args.pretrain_on is not None:
        raise JaxvizError("--pretrain-on needs --init pool (networks pretrained on it are adapted).")
    if config.init == "pool" and config.soft_labels:
        raise JaxvizError("--init pool and --poison compare hard-label sets with real images; drop --soft-labels.")
    check_config(config)
    if config.init == "pool":
        from jaxviz.tour.distill_pool import check_pool_split

        check_pool_split(args.pool_size, args.held_out, config.num_inits, attack, args.pretrain_on, args.dataset)
    if (args.dataset == "rotten_tomatoes") != (args.model == "textcnn"):
        raise JaxvizError(f"--model textcnn goes with --dataset rotten_tomatoes, and only it; got --model {args.model} with "
                          f"--dataset {args.dataset}.")
    if args.dataset == "rotten_tomatoes" and config.init == "pool":
        raise JaxvizError("--init pool and --poison are for the image data sets (mnist5k, fashion_mnist).")
    text = load_rotten_tomatoes() if args.dataset == "rotten_tomatoes" else None
    data = text.data if text is not None else load_dataset(args.dataset)
    if attack is not None and max(attack) >= len(data.class_names):
        raise JaxvizError(f"--poison {args.poison}: {data.name} has classes 0..{len(data.class_names) - 1}.")
    if text is None and data.x_train.shape[1] not in (28, 32):
        raise JaxvizError(f"--dataset {args.dataset} has {data.x_train.shape[1]} px images; lenet and convnet need 28 or 32 px "
                          "(mnist5k, fashion_mnist).")
    build = {"lenet": lenet, "convnet": convnet, "textcnn": textcnn}[args.model]
    model = build(data.x_train.shape[1:], class_names=data.class_names, key=jax.random.key(args.seed))
    out = Path(args.out)
    report = Report(out, f"jaxviz distill: {model.name} on {data.name}")
    sets = args.table_sets if args.table_sets is not None else (5 if args.quick else 20)
    if sets < 1:
        raise JaxvizError(f"--table-sets must be at least 1; got {sets}.")
    if args.eval_every < 0:
        raise JaxvizError(f"--eval-every must be 0 (only at the end) or a positive number of iterations; got {args.eval_every}.")
    validation = None
    if args.validation:
        if config.init == "pool" or args.eval_every < 1:
            raise JaxvizError("--validation N keeps the best set at each --eval-every measurement: it needs --eval-every >= 1 and "
                              "--init fixed or random.")
        data, validation = split_validation(data, args.validation, seed=args.seed)
    table = None if args.no_baseline or text is not None else dict(num_sets=sets, num_inits=10)
    if config.init == "pool":
        from jaxviz.tour.distill_pool import pool_study

        summary = pool_study(report, out, model, data, config, pretrain_on=args.pretrain_on, attack=attack, pool_size=args.pool_size,
                             held_out=args.held_out, pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
                             cache=args.cache_dir, progress=not args.no_progress)
    else:
        summary = study(report, out, model, data, config, baseline=not args.no_baseline, cache=args.cache_dir,
                        progress=not args.no_progress, table=table, eval_every=args.eval_every, validation=validation)
    if text is not None:
        z = np.load(out / summary["runs"][0]["artifact"])
        words = sentences_markdown(z["x"], z["y"], text.vocab, text.embeddings, data.class_names)
        (out / "sentences.md").write_text(words + "\n")
        section = report.section("Distilled sentences", "Each token of each distilled sentence read as the real word whose GloVe "
                                 "vector is most similar (cosine); faint words are far from any word.")
        section.figure(sentences_figure(z["x"], z["y"], text.vocab, text.embeddings, data.class_names), "distilled sentences",
                       name="sentences")
        summary["sentences"] = words
    report.write()
    summary["config"] = {**config._asdict(), "validation": args.validation}  # the recipe that ran, to describe or rerun it
    (out / "distill.json").write_text(json.dumps(summary, indent=2))
    if not args.no_progress:
        for r in summary["runs"]:
            print(f"{'random real' if r['baseline'] else 'distilled'}: test accuracy {r['test_accuracy']:.4f} ({r['artifact']})")
        for key in ("table", "adaptation", "poisoning"):
            if key in summary:
                print(summary[key]["markdown"])
    return 0


def _attack(text: str | None) -> tuple[int, int] | None:
    """``"A:B"`` as two distinct non-negative classes."""
    from jaxviz.errors import TargetError

    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise TargetError(f"--poison takes two class indices as A:B (attacked:target), e.g. 3:8; got {text!r}.")
    a, b = int(parts[0]), int(parts[1])
    if a == b:
        raise TargetError(f"--poison {text}: the attacked class and the target class must differ.")
    return a, b


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
