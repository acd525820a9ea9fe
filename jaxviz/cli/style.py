"""Style transfer (Gatys et al. 2016): render a content image in the style of another, for one or more
alpha/beta ratios. Writes OUT/style.png (content, style, then one result per ratio), OUT/style.json
(style and content loss per ratio and, for ImageNet models, the top-1 class of each result) and
OUT/index.html. Exit code 2, with one line, when the loss turns NaN or the L-BFGS line search fails."""

from __future__ import annotations

import json
from pathlib import Path

from jaxviz.cli.texture import (
    add_optimiser_arguments,
    finish,
    layer_list,
    load_image,
    load_model,
    settings,
)

HELP = "Gatys style transfer: content and style images, alpha/beta sweep, colour preservation, coarse-to-fine"


def add_arguments(parser) -> None:
    parser.add_argument("content", metavar="CONTENT", help="content image: a bundled photo by name (chelsea, astronaut, ...) or a file")
    parser.add_argument("style", metavar="STYLE", help="style image: a bundled photo by name or a file")
    add_optimiser_arguments(parser, size=192, quick_size=96)
    parser.add_argument("--alpha-beta", default="1", help="comma-separated content/style weight ratios, one result each (default: %(default)s)")
    parser.add_argument("--content-layer", default=None, help="content layer (default: the model's, e.g. fire5)")
    parser.add_argument("--style-layers", default=None, help="comma-separated style layers (default: the model's)")
    parser.add_argument("--tv", type=float, default=0.0, help="total-variation weight (default: %(default)s)")
    parser.add_argument("--init", default="content", choices=("content", "style", "noise"), help="start image (default: %(default)s)")
    parser.add_argument("--preserve-color", default=None, choices=("luminance", "histogram"), help="keep the content's colours")
    parser.add_argument("--scales", default=None, help="coarse-to-fine sides, e.g. 128,256,512 (the last is the output size)")


def run(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxviz.data import resize
    from jaxviz.errors import JaxvizError
    from jaxviz.style import CAT_CLASSES, style_transfer
    from jaxviz.viz import Report, image_grid, save_png

    size, steps = settings(args)
    try:
        ratios = [float(v) for v in args.alpha_beta.split(",")]
        scales = None if args.scales is None else [int(v) for v in args.scales.split(",")]
    except ValueError:
        raise JaxvizError(f"--alpha-beta and --scales take comma-separated numbers; got {args.alpha_beta!r}, {args.scales!r}") from None
    size = scales[-1] if scales else size
    model = load_model(args.model)
    content, style = load_image(args.content, size), load_image(args.style, size)
    res = style_transfer(model, np.stack([content] * len(ratios)), style, key=jax.random.key(args.seed),
                         content_weight=np.asarray(ratios), style_weight=1.0, tv_weight=args.tv,
                         content_layer_name=args.content_layer, style_layer_names=layer_list(args.style_layers),
                         statistic=args.statistic, pooling=args.pooling, init=args.init, method=args.method, steps=steps,
                         learning_rate=args.lr, preserve_color=args.preserve_color, scales=scales)
    top1 = [None] * len(ratios)
    if model.class_names is not None:
        side = model.input_shape[0]
        top1 = [int(c) for c in np.asarray(jax.jit(lambda m, x: m(x).argmax(-1))(model, jnp.asarray(resize(np.asarray(res.image), side))))]
    names = (Path(args.content).stem, Path(args.style).stem)
    record = {"model": model.name, "size": size, "steps": steps, "method": args.method, "init": args.init,
              "preserve_color": args.preserve_color, "transfers": []}
    for i, ab in enumerate(ratios):
        record["transfers"].append({"content": names[0], "style": names[1], "alpha_beta": ab, "style_loss": float(res.style_loss[i]),
                                    "content_loss": float(res.content_loss[i]),
                                    "top1_class": None if top1[i] is None else model.class_names[top1[i]],
                                    "top1_is_cat": None if top1[i] is None or len(model.class_names) != 1000 else top1[i] in CAT_CLASSES})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = ["content", "style"] + [f"a/b {ab:g}" for ab in ratios]
    figure = save_png(out / "style.png", image_grid(np.concatenate([content[None], style[None], np.asarray(res.image)]),
                                                      ncols=len(ratios) + 2, labels=labels))
    (out / "style.json").write_text(json.dumps(record, indent=2))
    report = Report(out, "jaxviz style")
    section = report.section(f"Style transfer on {model.name}", f"{steps} {args.method} steps at {size} px, init {args.init}")
    section.figure(figure, "content, style, then one result per alpha/beta")
    section.table(record["transfers"], caption="normalised style and content losses; top-1 class of the result")
    report.write()
    for t in record["transfers"]:
        print(f"alpha/beta {t['alpha_beta']:<8g} style loss {t['style_loss']:.4f}  content loss {t['content_loss']:.4f}  top-1 {t['top1_class']}")
    print(f"wrote {figure}, {out / 'style.json'}, {out / 'index.html'}")
    return finish("style", [res])
