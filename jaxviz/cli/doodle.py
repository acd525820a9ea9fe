"""Neural doodle (Champandard 2016): a painting, its segmentation and a new segmentation give a new
painting, each segment matching the Gram matrices of the same segment of the painting. Segmentations
are colour images (k-means finds their colours); without --style-masks the painting is segmented by
k-means on its own colours, and without --target the new layout is that segmentation mirrored.
Writes OUT/doodle.png, OUT/doodle.json (distance of each new segment to each painting segment) and
OUT/index.html."""

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

HELP = "neural doodles: paint a new segmentation in the style of a segmented painting (masked Gram matrices)"


def add_arguments(parser) -> None:
    parser.add_argument("style", metavar="PAINTING", help="the painting: a bundled photo by name or an image file")
    parser.add_argument("--style-masks", default=None, help="colour segmentation of the painting (image file); default: k-means on its colours")
    parser.add_argument("--target", default=None, help="new colour segmentation (image file) using the same colours; default: the painting's, mirrored")
    parser.add_argument("--segments", type=int, default=3, help="number of segments (default: %(default)s)")
    parser.add_argument("--layers", default=None, help="comma-separated layers (default: the model's doodle layers)")
    parser.add_argument("--tv", type=float, default=1.0, help="total-variation weight (default: %(default)s)")
    add_optimiser_arguments(parser, size=128, quick_size=64)


def run(args) -> int:
    import jax
    import numpy as np

    from jaxviz.style import kmeans_segments, masks_from_colors, neural_doodle, one_hot
    from jaxviz.viz import Report, image_grid, save_png

    size, steps = settings(args)
    model = load_model(args.model)
    style = load_image(args.style, size)
    seg_source = style if args.style_masks is None else load_image(args.style_masks, size)
    labels, centres = kmeans_segments(seg_source, args.segments, seed=args.seed)
    style_masks = one_hot(labels, args.segments)
    if args.target is None:
        target_masks = style_masks[:, ::-1]
        target_img = centres[labels][:, ::-1]
    else:
        target_img = load_image(args.target, size)
        target_masks = masks_from_colors(target_img, centres)
    res = neural_doodle(model, style, style_masks, target_masks, key=jax.random.key(args.seed), layers=layer_list(args.layers),
                        statistic=args.statistic, pooling=args.pooling, method=args.method, steps=steps,
                        learning_rate=args.lr, tv_weight=args.tv)
    d = np.asarray(res.segment_distance[0])
    record = {"model": model.name, "size": size, "steps": steps, "method": args.method, "segments": args.segments,
              "segment_distance": d.tolist(), "own_segment_closest": bool(np.all(d.argmin(axis=1) == np.arange(len(d)))),
              "final_loss": float(res.loss[0]), "status": res.status}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = save_png(out / "doodle.png", image_grid([style, centres[labels], target_img, np.asarray(res.image[0])], ncols=4,
                                                       labels=["painting", "its segments", "new segments", "new painting"],
                                                       scale=max(1, 256 // size)))
    (out / "doodle.json").write_text(json.dumps(record, indent=2))
    report = Report(out, "jaxviz doodle")
    section = report.section(f"Neural doodle on {model.name}", f"{args.segments} segments, {steps} {args.method} steps at {size} px")
    section.figure(figure, "painting, its segmentation, the new segmentation and the new painting")
    section.table([{"new segment": i, **{f"to painting segment {j}": v for j, v in enumerate(row)}} for i, row in enumerate(d.tolist())],
                  caption="relative Gram distance of each new segment to each painting segment (smallest on the diagonal is good)")
    report.write()
    print("segment distances (rows: new segments, columns: painting segments):")
    for row in d:
        print("  " + " ".join(f"{v:.3f}" for v in row))
    print(f"wrote {figure}, {out / 'doodle.json'}, {out / 'index.html'}")
    return finish("doodle", [res])
