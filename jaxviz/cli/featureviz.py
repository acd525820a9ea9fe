"""Feature visualisation: the images that maximise channels, neurons or classes of a network (Lucid's
method: Fourier + decorrelated parameterisation, transformation robustness, regularisers). Writes
OUT/featureviz.png (one tile per unit), OUT/featureviz.json (final objective per unit; target and
robust probability for classes) and OUT/index.html."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "feature visualisation of channels, neurons or classes (Lucid-style), or class images"


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="squeezenet", help="a zoo model (squeezenet) or a checkpoint folder written by 'jaxviz train'")
    parser.add_argument("--layer", default=None, help="layer of the channel/neuron objective (default: fire6 for squeezenet, else the last spatial layer)")
    parser.add_argument("--channels", default="8", help="channels: a count N (the first N) or comma-separated indices (default: %(default)s)")
    parser.add_argument("--neuron", default=None, metavar="X,Y", help="maximise the unit at this position of each channel instead of the whole channel")
    parser.add_argument("--classes", default=None, help="class indices (comma-separated, or a range like 1-4): render class images instead of channels")
    parser.add_argument("--start", default=None, metavar="IMAGE", help="for --classes: start from this image (a file or a bundled photo) instead of noise, turning it toward the classes")
    parser.add_argument("--objective", choices=("logit", "prob"), default="logit", help="for --classes: maximise the logit or the softmax probability")
    parser.add_argument("--copies", type=int, default=1, help="images per unit, made different by a diversity term (default: %(default)s)")
    parser.add_argument("--diversity", type=float, default=0.0, help="weight of the diversity term across copies (default: %(default)s)")
    parser.add_argument("--size", type=int, default=None, help="image size in pixels (default: 128, 64 with --quick; for --classes and fixed-size models the model's input size)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: 256; 48 with --quick)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--param", choices=("fourier", "pixels"), default="fourier", help="parameterisation (default: %(default)s)")
    parser.add_argument("--no-decorrelate", action="store_true", help="optimise RGB directly instead of the decorrelated colour space")
    parser.add_argument("--decay", type=float, default=1.0, help="Fourier spectrum decay exponent (default: %(default)s)")
    parser.add_argument("--squash", choices=("sigmoid", "clip"), default="sigmoid", help="map to [0, 1] by sigmoid or clipping")
    parser.add_argument("--transforms", choices=("standard", "none"), default="standard", help="Lucid's standard robustness transforms, or none")
    parser.add_argument("--tv", type=float, default=0.0, help="total-variation weight")
    parser.add_argument("--l1", type=float, default=0.0, help="L1 weight (around mid-grey)")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 weight (around mid-grey)")
    parser.add_argument("--prior", type=float, default=0.0, help="Gaussian patch-prior weight")
    parser.add_argument("--blur-every", type=int, default=0, help="blur the image every K steps (0: never)")
    parser.add_argument("--blur-sigma", type=float, default=0.5, help="blur std in pixels (default: %(default)s)")


def parse_indices(spec: str, what: str, count: bool = True) -> list[int]:
    """``"8"`` -> [0..7] if ``count`` else [8]; ``"3,5"`` -> [3, 5]; ``"2-4"`` -> [2, 3, 4]."""
    from jaxviz.errors import JaxvizError

    try:
        if count and "," not in spec and "-" not in spec:
            n = int(spec)
            if n < 1:
                raise ValueError
            return list(range(n))
        out = []
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
        return out
    except ValueError:
        raise JaxvizError(f"--{what} must be a count N, indices like 3,5,9 or a range like 2-6; got {spec!r}") from None


def default_layer(model) -> str:
    if "fire6" in model.layers:
        return "fire6"
    shapes = model.layer_shapes()
    spatial = [n for n in model.layers if len(shapes[n]) == 4]
    return spatial[-1] if spatial else model.layers[-1]


def run(args) -> int:
    import jax
    import numpy as np

    from jaxviz import featureviz as fv
    from jaxviz.cli.saliency import _load_model
    from jaxviz.errors import JaxvizError
    from jaxviz.featureviz import transforms as T
    from jaxviz.viz import Report, image_grid, save_png

    for name in ("copies", "steps", "size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise JaxvizError(f"--{name} must be at least 1; got {v}")
    model = _load_model(args.model)
    steps = args.steps or (48 if args.quick else 256)
    # class images are judged at the network's input size, so they are rendered at it unless told otherwise
    native = not model.resizable or args.classes is not None
    size = args.size or (model.input_shape[0] if native else 64 if args.quick else 128)
    channels_in = model.input_shape[-1]
    if args.classes is not None:
        units = parse_indices(args.classes, "classes", count=False)
        objective_fn = fv.class_prob if args.objective == "prob" else fv.class_logit
        per_unit = np.repeat(units, args.copies)
        objective = objective_fn(per_unit)
        names = [model.class_names[u][:14] if model.class_names else str(u) for u in per_unit] if max(units) < (model.num_classes or 0) else [str(u) for u in per_unit]
        what = f"classes {','.join(map(str, units))}"
    else:
        layer = args.layer or default_layer(model)
        units = parse_indices(args.channels, "channels")
        per_unit = np.repeat(units, args.copies)
        if args.neuron is not None:
            try:
                x, y = (int(v) for v in args.neuron.split(","))
            except ValueError:
                raise JaxvizError(f"--neuron must be X,Y (two integers); got {args.neuron!r}") from None
            objective = fv.neuron(layer, per_unit, x=x, y=y)
        else:
            objective = fv.channel(layer, per_unit)
        names = [f"{layer}:{u}" for u in per_unit]
        what = f"{layer} channels {','.join(map(str, units))}"
    if args.diversity:
        if args.copies < 2:
            raise JaxvizError("--diversity compares copies of a unit: pass --copies 2 or more")
        objective = objective + args.diversity * fv.diversity(args.layer or default_layer(model))
    param = fv.image_param(size, len(per_unit), channels_in, fourier=args.param == "fourier",
                           decorrelate=not args.no_decorrelate and args.param == "fourier", decay_power=args.decay, squash=args.squash)
    init = None
    if args.start is not None:
        if args.classes is None:
            raise JaxvizError("--start turns a photo toward --classes; give --classes too")
        from jaxviz.cli.saliency import _load_images

        start = _load_images([args.start], model.replace(input_shape=(size, size, channels_in)))
        init = param.encode(np.repeat(start, len(per_unit), axis=0))
    regs = fv.Regularisers(args.tv, args.l1, args.l2, args.prior, args.blur_every, args.blur_sigma)
    transforms = T.STANDARD if args.transforms == "standard" else T.NONE
    k_render, k_eval = jax.random.split(jax.random.key(args.seed))
    result = fv.render(model, objective, param, key=k_render, steps=steps, transforms=transforms, regularisers=regs,
                       optimizer=fv.adam(args.lr), init=init, progress=not args.no_progress)
    images = fv.quantise(result.images)
    record = {"model": model.name, "objective": what, "steps": steps, "size": size, "units": [int(u) for u in per_unit],
              "final_objective": result.objective[-1].tolist(), "settings": {k: v for k, v in vars(args).items() if k not in ("run",)}}
    labels = list(names)
    if args.classes is not None:
        prob = fv.probability(model, images, per_unit)
        robust = fv.robust_probability(model, images, per_unit, key=k_eval)
        record.update(prob=prob.tolist(), robust_prob=robust.tolist())
        labels = [f"{n} {p:.2f}" for n, p in zip(names, prob)]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scale = max(1, 96 // size)
    figure = save_png(out / "featureviz.png", image_grid(images, scale=scale, labels=labels, ncols=min(8, len(images))))
    record["figure"] = str(figure)
    (out / "featureviz.json").write_text(json.dumps(record, indent=2))
    report = Report(out, "jaxviz featureviz")
    section = report.section(f"{model.name}: {what}")
    section.figure(figure, f"{steps} steps at {size} px; {args.param}, transforms {args.transforms}")
    report.write()
    for n, v in zip(names, result.objective[-1]):
        print(f"{n:24s} objective {v:10.4g}")
    print(f"wrote {figure}, {out / 'featureviz.json'}, {out / 'index.html'}")
    return 0
