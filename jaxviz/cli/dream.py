"""DeepDream: amplify what a layer of the network sees in a photo, over several octaves (scales).
Writes OUT/dream.png (the photo, then the dream) and OUT/dream.json."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "DeepDream a photo: gradient ascent on a layer's activation norm, with octaves and jitter"


def add_arguments(parser) -> None:
    from jaxviz.data import PHOTOS

    parser.add_argument("image", metavar="IMAGE", help=f"an image file, or a bundled photo by name ({', '.join(PHOTOS)})")
    parser.add_argument("--model", default="squeezenet", help="a resizable zoo model (default: %(default)s)")
    parser.add_argument("--layer", default="fire5", help="layer whose activation norm to amplify (default: %(default)s)")
    parser.add_argument("--channel", type=int, default=None, help="amplify only this channel of the layer")
    parser.add_argument("--size", type=int, default=None, help="shorter side of the image in pixels (default: 320; 128 with --quick)")
    parser.add_argument("--octaves", type=int, default=None, help="number of scales (default: 4; 2 with --quick)")
    parser.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="steps per octave (default: 10; 5 with --quick)")
    parser.add_argument("--step-size", type=float, default=0.01, help="step in pixel units per normalised gradient (default: %(default)s)")
    parser.add_argument("--jitter", type=int, default=16, help="random roll of up to this many pixels each step (default: %(default)s)")


def run(args) -> int:
    import jax
    import numpy as np

    from jaxviz import featureviz as fv
    from jaxviz.cli.saliency import _load_model
    from jaxviz.data import PHOTOS, load_image, photo, resize, to_rgb
    from jaxviz.errors import JaxvizError
    from jaxviz.viz import Report, image_grid, save_png

    model = _load_model(args.model)
    size = args.size or (128 if args.quick else 320)
    if size < 1:
        raise JaxvizError(f"--size must be positive; got {size}")
    img = photo(args.image) if args.image in PHOTOS and not Path(args.image).exists() else load_image(args.image, mode=None)
    img = to_rgb(img) if model.input_shape[-1] == 3 else img
    h, w = img.shape[:2]
    s = size / min(h, w)
    x = resize(img, (max(1, round(h * s)), max(1, round(w * s))), crop=None)[None]
    objective = fv.layer(args.layer) if args.channel is None else fv.channel(args.layer, args.channel)
    result = fv.deepdream(model, x, objective, key=jax.random.key(args.seed), octaves=args.octaves or (2 if args.quick else 4),
                          octave_scale=args.octave_scale, steps=args.steps or (5 if args.quick else 10), step_size=args.step_size,
                          jitter=args.jitter, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = save_png(out / "dream.png", image_grid(np.concatenate([x, result.image]), ncols=2, labels=["photo", f"dream: {args.layer}"]))
    record = {"model": model.name, "image": args.image, "layer": args.layer, "channel": args.channel, "size": list(x.shape[1:3]),
              "objective_first": float(result.objective[0, 0, 0]), "objective_last": float(result.objective[-1, -1, 0]), "figure": str(figure)}
    (out / "dream.json").write_text(json.dumps(record, indent=2))
    report = Report(out, "jaxviz dream")
    report.section(f"DeepDream of {args.image} on {model.name}:{args.layer}").figure(figure, "photo and dream")
    report.write()
    print(f"objective {record['objective_first']:.4g} -> {record['objective_last']:.4g} (last octave, last step)")
    print(f"wrote {figure}, {out / 'dream.json'}, {out / 'index.html'}")
    return 0
