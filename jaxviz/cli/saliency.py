"""Attribution maps for images: which pixels make the network say what it says. Writes
OUT/saliency.png (image, then one overlay per method), OUT/saliency.json (deletion/insertion AUC per
method and image) and OUT/index.html."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "attribution maps (occlusion, gradient, SmoothGrad, guided backprop, Grad-CAM, IG, FullGrad, ...)"


def add_arguments(parser) -> None:
    from jaxviz.data import PHOTOS
    from jaxviz.tour.compare import DEFAULT_METHODS, METHODS

    parser.add_argument("images", nargs="+", metavar="IMAGE", help=f"image files, or bundled photos by name ({', '.join(PHOTOS)})")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"comma-separated, from: {', '.join(METHODS)}")
    parser.add_argument("--target", default="top", help="class index for every image, comma-separated indices (one per image), or 'top' (predicted class)")
    parser.add_argument("--model", default="squeezenet", help="a zoo model (squeezenet, vgg16_hed) or a checkpoint folder written by 'jaxviz train'")
    parser.add_argument("--layer", default=None, help="layer for the CAM methods (default: the last spatial layer)")
    parser.add_argument("--sanity", action="store_true", help="also run the cascading randomisation check (slow)")


def _load_model(spec: str):
    from jaxviz.models import PRETRAINED, get_model
    from jaxviz.train import load_trained

    if spec in PRETRAINED:
        return get_model(spec)
    if Path(spec).is_dir():
        return load_trained(spec)
    from jaxviz.errors import JaxvizError

    raise JaxvizError(f"--model {spec!r} is neither a pretrained zoo model ({', '.join(PRETRAINED)}) nor a checkpoint folder")


def _load_images(paths, model):
    import numpy as np

    from jaxviz.data import PHOTOS, load_image, photo, resize, to_grey, to_rgb

    h, w, c = model.input_shape
    out = []
    for p in paths:
        img = photo(p) if p in PHOTOS and not Path(p).exists() else load_image(p, mode=None)
        img = to_rgb(img) if c == 3 else to_grey(img)
        out.append(resize(img, (h, w)))
    return np.stack(out)


def _targets(spec: str, model, x):
    import numpy as np

    from jaxviz.errors import JaxvizError
    from jaxviz.train import predict

    if spec == "top":
        return predict(model, x)
    try:
        values = [int(v) for v in spec.split(",")]
    except ValueError:
        raise JaxvizError(f"--target must be 'top' or integer class indices, got {spec!r}") from None
    return np.asarray(model.check_targets(values[0] if len(values) == 1 else values, len(x)))


def run(args) -> int:
    import jax

    from jaxviz.tour.compare import attribution_maps, check_methods, panel, sanity_check, score_maps, settings_for
    from jaxviz.viz import Report, save_png

    methods = check_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    model = _load_model(args.model)
    x = _load_images(args.images, model)
    targets = _targets(args.target, model, x)
    settings = settings_for(model, args.quick)._replace(layer=args.layer)
    if settings.layer is not None:
        model.check_layers([settings.layer])
    small = model.input_shape[0] <= 64
    k_maps, k_sanity = jax.random.split(jax.random.key(args.seed))
    maps = attribution_maps(model, x, targets, methods, key=k_maps, settings=settings)
    scores = score_maps(model, x, targets, maps, steps=settings.metric_steps, chunk_size=settings.chunk_size)
    names = [Path(p).stem for p in args.images]
    labels = [f"{n}: {model.class_names[t][:12]}" if model.class_names else n for n, t in zip(names, targets)]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = save_png(out / "saliency.png", panel(x, maps, labels=labels, scale=4 if small else 1))
    record = {
        "model": model.name,
        "images": names,
        "targets": targets.tolist(),
        "methods": list(methods),
        "deletion_auc": scores.deletion_auc,
        "insertion_auc": scores.insertion_auc,
        "figure": str(figure),
        "settings": settings._asdict(),
    }
    if args.sanity:
        record["sanity_spearman"] = sanity_check(model, x, targets, key=k_sanity, settings=settings)
    (out / "saliency.json").write_text(json.dumps(record, indent=2))
    report = Report(out, "jaxviz saliency")
    section = report.section(f"{model.name}: {', '.join(methods)}")
    section.figure(figure, "image, then each method's map over it")
    rows = [{"method": m, "deletion AUC (mean)": sum(scores.deletion_auc[m]) / len(x), "insertion AUC (mean)": sum(scores.insertion_auc[m]) / len(x)} for m in methods]
    section.table(rows, caption="deletion: lower is better; insertion: higher is better")
    report.write()

    print(f"{'method':28s} {'deletion AUC':>12s} {'insertion AUC':>13s}")
    for row in rows:
        print(f"{row['method']:28s} {row['deletion AUC (mean)']:12.4f} {row['insertion AUC (mean)']:13.4f}")
    print(f"wrote {figure}, {out / 'saliency.json'}, {out / 'index.html'}")
    return 0
