"""Images from features (Dosovitskiy, Springenberg & Brox 2015): train an up-convolutional generator
from (item identity, transformation parameters) to (image, mask) on Fashion-MNIST or MNIST-5k items,
or load it from its checkpoint, then write OUT/sweeps.png (each transformation swept; generated row,
rendered row), OUT/morph.png, OUT/arithmetic.png, with --checkerboard OUT/checkerboard.png, and
OUT/generate.json (reconstruction error on training and held-out transformation values, arithmetic
errors, checkerboard scores) and OUT/index.html."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "train a generator from identity + transformation to image + mask, sweeps, morphs, arithmetic, checkerboards"


def add_arguments(parser) -> None:
    from jaxviz.generate.from_features import GENERATOR_DATASETS
    from jaxviz.generate.layers import UPSAMPLINGS

    parser.add_argument("--dataset", default=None, help=f"where the items come from: {', '.join(GENERATOR_DATASETS)} (default: fashion_mnist)")
    parser.add_argument("--items", type=int, default=None, help="number of item identities (default: 10 with --quick, else 20)")
    parser.add_argument("--upsampling", default=None, help=f"one of {', '.join(UPSAMPLINGS)} (default: resize)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 150 with --quick, else 1200)")
    parser.add_argument("--canvas", type=int, default=None, help="image side in pixels, a multiple of 8 (default: 32)")
    parser.add_argument("--width", type=int, default=None, help="channels before the last upsampling (default: 8 with --quick, else 16)")
    parser.add_argument("--hidden", type=int, default=None, help="width of the fully connected layers (default: 128 with --quick, else 256)")
    parser.add_argument("--holdout", default="rotation:0.25:0.6",
                        help="TRANSFORM:LOW:HIGH normalised values never seen in training, or 'none' (default: %(default)s)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder to resume from or load (default: one per config under --cache-dir)")
    parser.add_argument("--checkerboard", action="store_true", help="also train the generator with every upsampling and score checkerboards")


def _holdout(spec: str):
    from jaxviz.errors import JaxvizError
    from jaxviz.generate.from_features import Holdout

    if spec.lower() == "none":
        return None
    try:
        name, low, high = spec.split(":")
        return Holdout(name, float(low), float(high))
    except ValueError:
        raise JaxvizError(f"--holdout must be TRANSFORM:LOW:HIGH (e.g. rotation:0.25:0.6) or 'none'; got {spec!r}") from None


def config_from_args(args):
    """The :class:`~jaxviz.generate.GeneratorConfig` the arguments ask for, validated."""
    from jaxviz.generate.from_features import FULL_CONFIG, QUICK_CONFIG, check_config

    base = QUICK_CONFIG if args.quick else FULL_CONFIG
    given = {"dataset": args.dataset, "n_items": args.items, "upsampling": args.upsampling, "steps": args.steps,
             "canvas": args.canvas, "width": args.width, "hidden": args.hidden}
    config = base._replace(**{k: v for k, v in given.items() if v is not None}, holdout=_holdout(args.holdout), seed=args.seed)
    return check_config(config)


def run(args) -> int:
    from jaxviz.generate import from_features as ff
    from jaxviz.viz import Report, save_png

    config = config_from_args(args)
    checkpoint = Path(args.checkpoint) if args.checkpoint else ff.checkpoint_dir_for(config, args.cache_dir)
    result = ff.train_generator(config, checkpoint_dir=checkpoint, progress=not args.no_progress)
    evaluation = ff.evaluate_generator(result)
    pairs = [(k, k + 1) for k in range(0, min(config.n_items - 1, 6), 2)] or [(0, 0)]
    arith = ff.arithmetic(result, pairs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"sweeps": ff.sweep_figure(result, truth=True), "morph": ff.morph_figure(result, pairs), "arithmetic": arith.figure}
    record = {
        "config": ff._recipe(config),
        "checkpoint": str(checkpoint),
        "trained_steps": result.steps - (result.resumed_from or 0),
        "train_seconds": result.seconds,
        "items": list(result.items.names),
        "reconstruction": {"train": evaluation.train, "held_out": evaluation.held_out, "n": evaluation.n},
        "arithmetic": {"transform": "rotation", "pairs": [list(p) for p in pairs], **{k: v for k, v in arith._asdict().items() if k != "figure"}},
    }
    if args.checkerboard:
        study = ff.checkerboard_study(config, cache=args.cache_dir, progress=not args.no_progress)
        figures["checkerboard"] = ff.checkerboard_figure(study)
        record["checkerboard"] = ff.study_scores(study)
    record["figures"] = {name: str(save_png(out / f"{name}.png", image)) for name, image in figures.items()}
    (out / "generate.json").write_text(json.dumps(record, indent=2))

    report = Report(out, "jaxviz generate")
    section = report.section("Images from features", "Dosovitskiy, Springenberg & Brox 2015; checkerboards: Odena, Dumoulin & Olah 2016.")
    captions = {"sweeps": "each transformation swept from -1 to 1 (generated row, then rendered row)",
                "morph": "identity input interpolated between two items", "arithmetic":
                "G(a,r0), G(a,r1), G(b,r0), decoded h(a,r1) - h(a,r0) + h(b,r0), G(b,r1), rendered (b,r1)",
                "checkerboard": "the same generator with each upsampling; checkerboard score of the pixels"}
    for name, path in record["figures"].items():
        section.figure(Path(path), captions[name])
    rows = [{"values": split, **errors} for split, errors in (("training", evaluation.train), ("held out", evaluation.held_out)) if errors]
    section.table(rows, caption="reconstruction error on fresh transformations")
    report.write()

    for row in rows:
        print(f"{row['values']:10s} image MSE {row['image_mse']:.4f}  mask IoU {row['mask_iou']:.3f}")
    print(f"arithmetic: MSE vs generator {arith.mse_vs_generator:.4f}, vs rendering {arith.mse_vs_render:.4f}")
    for s in record.get("checkerboard", ()):
        print(f"checkerboard {s['upsampling']:12s} {s['score']:.3f} (gradient {s['score_gradient']:.3f})")
    print(f"wrote {', '.join(record['figures'].values())}, {out / 'generate.json'}, {out / 'index.html'}")
    return 0
