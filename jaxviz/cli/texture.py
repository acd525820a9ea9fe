"""Texture synthesis (Gatys et al. 2015): optimise images from noise until their Gram matrices at a set
of layers match those of each texture. Writes OUT/texture.png (sources, then syntheses), OUT/texture.json
(Gram distance of each synthesis to its source and to the other sources) and OUT/index.html. Exit code 2,
with one line, when the loss turns NaN or the L-BFGS line search fails (the last good image is kept)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "Gram-matrix texture synthesis from bundled textures (brick, grass, gravel) or image files"


def add_arguments(parser) -> None:
    parser.add_argument("textures", nargs="+", metavar="TEXTURE", help="bundled photos by name (brick, grass, gravel, ...) or image files")
    add_optimiser_arguments(parser, size=128, quick_size=64)
    parser.add_argument("--layers", default=None, help="comma-separated layers to match (default: the model's texture layers)")
    parser.add_argument("--subsets", action="store_true", help="also synthesise with growing layer subsets (Gatys et al. 2015, Fig. 2)")
    parser.add_argument("--random-baseline", action="store_true", help="also synthesise with random weights (same architecture)")


def add_optimiser_arguments(parser, *, size: int, quick_size: int) -> None:
    """Options shared by texture, style and doodle."""
    parser.add_argument("--model", default="squeezenet", help="squeezenet or vgg16_hed (default: %(default)s)")
    parser.add_argument("--size", type=int, default=None, help=f"image side in pixels (default {size}; {quick_size} with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser iterations (default 100; 30 with --quick)")
    parser.add_argument("--method", default="lbfgs", choices=("lbfgs", "adam"), help="optimiser (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam step size in pixel units (default: %(default)s)")
    parser.add_argument("--statistic", default="gram", choices=("gram", "covariance", "mean"), help="style statistic (default: %(default)s)")
    parser.add_argument("--pooling", default="max", choices=("max", "avg"), help="max pooling, or average pooling as Gatys (default: %(default)s)")
    parser.set_defaults(default_size=size, quick_size=quick_size)


def settings(args) -> tuple[int, int]:
    """``(size, steps)`` from the options and --quick."""
    from jaxviz.errors import JaxvizError

    size = args.size or (args.quick_size if args.quick else args.default_size)
    steps = args.steps or (30 if args.quick else 100)
    if size < 1 or steps < 1:
        raise JaxvizError(f"--size and --steps must be positive; got {size} and {steps}")
    return size, steps


def load_model(name: str):
    from jaxviz.errors import JaxvizError
    from jaxviz.models import PRETRAINED, get_model

    if name not in PRETRAINED:
        raise JaxvizError(f"--model {name!r}: choose one of {', '.join(PRETRAINED)}")
    return get_model(name)


def load_image(spec: str, size: int | None = None, channels: int = 3):
    """A bundled photo by name or an image file, as RGB (or grey) in [0, 1], centre-cropped to ``size``."""
    from jaxviz.data import PHOTOS, load_image, photo, resize, to_grey, to_rgb

    img = photo(spec) if spec in PHOTOS and not Path(spec).exists() else load_image(spec, mode=None)
    img = to_rgb(img) if channels == 3 else to_grey(img)
    return img if size is None else resize(img, size)


def layer_list(spec: str | None):
    return None if spec is None else [s.strip() for s in spec.split(",") if s.strip()]


def finish(command: str, results) -> int:
    """Exit code 2 with one line per result that stopped early (NaN, failed line search), else 0."""
    bad = [r for r in results if r.status != "ok"]
    for r in bad:
        print(f"jaxviz {command}: error: {r.message}", file=sys.stderr)
    return 2 if bad else 0


def run(args) -> int:
    import jax
    import numpy as np

    from jaxviz.style import (
        disjoint_crops,
        extractor,
        gram_distance,
        growing_subsets,
        random_weights,
        statistics,
        synthesize_texture,
        texture_layers,
    )
    from jaxviz.viz import Report, image_grid, save_png

    size, steps = settings(args)
    model = load_model(args.model)
    layers = layer_list(args.layers) or texture_layers(model)
    names = [Path(t).stem for t in args.textures]
    pairs = [disjoint_crops(load_image(t), size) for t in args.textures]
    src, crops = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    kw = dict(layers=layers, statistic=args.statistic, pooling=args.pooling, method=args.method, steps=steps, learning_rate=args.lr)
    key = jax.random.key(args.seed)
    res = synthesize_texture(model, src, key=key, **kw)
    results, rows = [res], [("synthesis", res)]
    if args.subsets:
        for i, w in enumerate(growing_subsets(layers)):
            r = synthesize_texture(model, src, key=key, weights=w, **kw)
            results.append(r)
            rows.append((f"up to {layers[i]}", r))
    if args.random_baseline:
        r = synthesize_texture(random_weights(model, jax.random.fold_in(key, 1)), src, key=key, **kw)
        results.append(r)
        rows.append(("random weights", r))

    ext = extractor(model, layers)
    target = statistics(ext, src, args.statistic)
    one = lambda stats, i: {n: v[i:i + 1] for n, v in stats.items()}
    crop_d = np.asarray(gram_distance(statistics(ext, crops, args.statistic), target))
    record = {"model": model.name, "layers": list(layers), "size": size, "steps": steps, "method": args.method,
              "statistic": args.statistic, "pooling": args.pooling, "textures": []}
    for label, r in rows:
        stats = statistics(ext, r.image, args.statistic)
        for i, n in enumerate(names):
            others = {m: float(gram_distance(one(stats, i), one(target, j))[0]) for j, m in enumerate(names) if j != i}
            record["textures"].append({"source": n, "variant": label, "gram_distance_to_source": float(gram_distance(one(stats, i), one(target, i))[0]),
                                       "gram_distance_to_others": others, "crop_distance": float(crop_d[i]),
                                       "final_loss": float(r.loss[i]), "status": r.status})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = [src, *[np.asarray(r.image) for _, r in rows]]
    labels = [f"{n}" for n in names] + [f"{lab}: {n}"[:24] for lab, _ in rows for n in names]
    figure = save_png(out / "texture.png", image_grid(np.concatenate(images), ncols=len(names), labels=labels, scale=max(1, 256 // size)))
    (out / "texture.json").write_text(json.dumps(record, indent=2))
    report = Report(out, "jaxviz texture")
    section = report.section(f"Texture synthesis on {model.name}", f"layers {', '.join(layers)}; {steps} {args.method} steps at {size} px")
    section.figure(figure, "sources (top row), then each synthesis")
    section.table([{k: v for k, v in t.items() if k != "gram_distance_to_others"} for t in record["textures"]],
                  caption="relative Gram distance to the source; crop_distance: a disjoint crop of the source (the bar)")
    report.write()
    for t in record["textures"]:
        print(f"{t['variant']:>18s} {t['source']:>10s}  distance to source {t['gram_distance_to_source']:.3f}  "
              f"(disjoint crop {t['crop_distance']:.3f}; others {', '.join(f'{k} {v:.3f}' for k, v in t['gram_distance_to_others'].items())})")
    print(f"wrote {figure}, {out / 'texture.json'}, {out / 'index.html'}")
    return finish("texture", results)
