"""Fast style transfer (Johnson et al. 2016): ``train`` a transformer network on a style image, then
``apply`` it to any image in one pass.

``jaxviz fast-style train STYLE`` trains on augmented crops of the bundled photos (or on
``--content-dir``), checkpointing to ``--checkpoint`` (default: a folder under the cache named by the
settings), resumes when run again, and writes OUT/fast-style-train.png (style, then bundled photos
stylised) and OUT/fast-style-train.json (settings, final losses, ms per image).
``jaxviz fast-style apply IMAGE... --checkpoint DIR`` writes OUT/<name>-stylised.png for each image.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from jaxviz.cli.texture import load_image

HELP = "fast (feed-forward) style transfer: train a transformer network on a style, apply it in one pass"
PREVIEW = ("chelsea", "astronaut", "coffee")


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=("train", "apply"), help="train a network, or apply a trained one")
    parser.add_argument("images", metavar="IMAGE", nargs="+",
                        help="train: the style image; apply: images to stylise (bundled photo names or files)")
    parser.add_argument("--checkpoint", default=None, help="the network's checkpoint folder (train: default under the cache)")
    parser.add_argument("--content-dir", default=None, help="train: a folder of content images (default: the bundled photos)")
    parser.add_argument("--size", type=int, default=None, help="train: crop side (default 256, --quick 64)")
    parser.add_argument("--steps", type=int, default=None, help="train: Adam steps (default 2000, --quick 60)")
    parser.add_argument("--batch-size", type=int, default=None, help="train: crops per step (default 4, --quick 2)")
    parser.add_argument("--width", type=int, default=None, help="train: channels of the first layer (default 32, --quick 8)")
    parser.add_argument("--blocks", type=int, default=None, help="train: residual blocks (default 5, --quick 2)")
    parser.add_argument("--norm", default="instance", choices=("instance", "batch", "none"), help="normalisation (default: %(default)s)")
    parser.add_argument("--upsampling", default="resize", choices=("resize", "transposed3", "transposed4"),
                        help="resize-convolution or stride-2 transposed convolution of kernel 3 or 4 (default: %(default)s)")
    parser.add_argument("--noise", type=float, default=0.0, help="train: std of Gaussian noise added to inputs (default: %(default)s)")
    parser.add_argument("--stability", type=float, default=0.0,
                        help="train: weight of the output change between clean and noisy inputs (needs --noise; default: %(default)s)")
    parser.add_argument("--style-weight", type=float, default=5.0, help="train: style loss weight (default: %(default)s)")
    parser.add_argument("--content-weight", type=float, default=1.0, help="train: content loss weight (default: %(default)s)")
    parser.add_argument("--tv", type=float, default=10.0, help="train: total-variation weight (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3, help="train: Adam learning rate (default: %(default)s)")
    parser.add_argument("--max-side", type=int, default=None, help="apply: resize images so the longer side is at most this")


def _config(args):
    from jaxviz.generate.fast_style import FastStyleConfig

    quick = args.quick
    pick = lambda value, full, fast: value if value is not None else (fast if quick else full)
    return FastStyleConfig(width=pick(args.width, 32, 8), residual_blocks=pick(args.blocks, 5, 2), norm=args.norm,
                           upsampling=args.upsampling, size=pick(args.size, 256, 64), batch_size=pick(args.batch_size, 4, 2),
                           steps=pick(args.steps, 2000, 60), learning_rate=args.lr, content_weight=args.content_weight,
                           style_weight=args.style_weight, tv_weight=args.tv, noise_std=args.noise,
                           stability_weight=args.stability, seed=args.seed)


def run(args) -> int:
    return _train(args) if args.action == "train" else _apply(args)


def _train(args) -> int:
    import numpy as np

    from jaxviz.errors import JaxvizError
    from jaxviz.generate.fast_style import check_config, stylise, train_fast_style
    from jaxviz.generate.images import content_images
    from jaxviz.train import cache_dir, run_id
    from jaxviz.viz import image_grid, save_png

    if len(args.images) != 1:
        raise JaxvizError(f"train takes one style image; got {len(args.images)}.")
    config = check_config(_config(args))
    style = load_image(args.images[0])
    checkpoint = Path(args.checkpoint) if args.checkpoint else (
        cache_dir(args.cache_dir) / "fast-style" / run_id(style=Path(args.images[0]).name, config=list(config), content=args.content_dir))
    content = content_images(args.content_dir, size=config.size, seed=config.seed)
    res = train_fast_style(style, content, config, style_name=Path(args.images[0]).stem, checkpoint_dir=checkpoint,
                           progress=not args.no_progress)
    previews = [load_image(name, 256) for name in PREVIEW]
    stylise(res.network, np.stack(previews)).block_until_ready()  # compile once before timing
    t0 = time.perf_counter()
    out_images = np.asarray(stylise(res.network, np.stack(previews)))
    ms = (time.perf_counter() - t0) * 1000 / len(previews)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = save_png(out / "fast-style-train.png", image_grid(np.concatenate([load_image(args.images[0], 256)[None], out_images]),
                                                                ncols=len(previews) + 1, labels=["style", *PREVIEW]))
    final = {k: float(v[-1]) for k, v in res.history.items()} if res.history else {}
    record = {"checkpoint": str(checkpoint), "style": res.network.style, "config": config._asdict(), "steps": res.steps,
              "resumed_from": res.resumed_from, "seconds": res.seconds, "final_losses": final, "ms_per_256px_image": ms}
    (out / "fast-style-train.json").write_text(json.dumps(record, indent=2))
    print(f"trained to step {res.steps} ({res.seconds:.1f} s this run); final losses {final}")
    print(f"checkpoint {checkpoint}; {ms:.1f} ms per 256 px image; wrote {figure}")
    return 0


def _apply(args) -> int:
    import numpy as np

    from jaxviz.data import resize
    from jaxviz.errors import JaxvizError
    from jaxviz.generate.fast_style import load_fast_style, stylise
    from jaxviz.viz import save_png

    if args.checkpoint is None:
        raise JaxvizError("apply needs --checkpoint DIR: the folder `jaxviz fast-style train` wrote (it prints it).")
    network = load_fast_style(args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.images:
        img = load_image(spec)
        if args.max_side and max(img.shape[:2]) > args.max_side:
            f = args.max_side / max(img.shape[:2])
            img = resize(img, (max(8, round(img.shape[0] * f)), max(8, round(img.shape[1] * f))), crop=None)
        t0 = time.perf_counter()
        y = np.asarray(stylise(network, img))[0]
        path = save_png(out / f"{Path(spec).stem}-stylised.png", y)
        print(f"{spec}: {img.shape[1]}x{img.shape[0]} in {time.perf_counter() - t0:.2f} s (first call compiles) -> {path}")
    return 0
