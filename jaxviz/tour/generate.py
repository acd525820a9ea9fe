"""Tour section: feed-forward generation. A fast-style network (Johnson et al. 2016) trained on a
bundled style image and timed against optimising the same losses; its output under input noise with
and without noise-robust training; the checkerboard study of Odena et al. (2016): the same networks
with transposed convolutions of kernel 3 and 4 and with resize-convolution, scored and shown side by
side; and images generated from features (Dosovitskiy et al. 2015)."""

from __future__ import annotations

import numpy as np

from jaxviz.data import load_image, photo, resize, to_rgb
from jaxviz.generate import UPSAMPLINGS, adain_tour, checkerboard_score, generator_tour, tiles
from jaxviz.generate.fast_style import (
    FastStyleConfig,
    compare_with_optimisation,
    noise_sensitivity,
    perceptual_losses,
    train_fast_style,
)
from jaxviz.generate.images import content_images
from jaxviz.tour.core import TourContext
from jaxviz.train import cache_dir, run_id
from jaxviz.viz import image_grid, save_png

STYLE_IMAGE = "immunohistochemistry"
QUICK = FastStyleConfig(width=8, residual_blocks=2, size=64, batch_size=2, steps=80, learning_rate=3e-3, style_weight=2.0)
FULL = FastStyleConfig(width=16, residual_blocks=3, size=96, batch_size=4, steps=240, learning_rate=2e-3, style_weight=2.0)
NOISE_STD = 0.05  # training noise of the noise-robust variant, and the noise its stability is measured at
STABILITY = 100.0  # weight of the output-change loss of the noise-robust variant
PREVIEWS = ("chelsea", "astronaut", "coffee")


def _figure(ctx: TourContext, image, caption: str, name: str) -> str:
    ctx.report.section("Generation").figure(image, caption, name=name)
    return ctx.report.figures[-1]


def _train(ctx: TourContext, style_image, config: FastStyleConfig):
    directory = cache_dir(ctx.cache) / "fast-style" / run_id(style=STYLE_IMAGE, config=list(config))
    content = content_images(size=config.size, seed=config.seed)
    res = train_fast_style(style_image, content, config, style_name=STYLE_IMAGE, checkpoint_dir=directory, progress=ctx.progress)
    ctx.log(f"[generation] fast style {config.upsampling}, noise {config.noise_std:g}: step {res.steps} "
            f"({'loaded' if res.resumed_from == config.steps else f'{res.seconds:.1f} s'})")
    return res.network


def _zoom(img: np.ndarray, side: int = 48, factor: int = 4) -> np.ndarray:
    """A centre crop enlarged by pixel repetition, so a period-2 pattern is visible."""
    h, w = img.shape[:2]
    top, left = (h - side) // 2 // 2 * 2, (w - side) // 2 // 2 * 2
    crop = img[top:top + side, left:left + side]
    return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)


def _fast_style(ctx: TourContext) -> dict:
    config = (QUICK if ctx.quick else FULL)._replace(seed=ctx.seed)
    style_image = to_rgb(photo(STYLE_IMAGE))
    nets = {up: _train(ctx, style_image, config._replace(upsampling=up)) for up in UPSAMPLINGS}
    main = nets["resize"]
    robust = _train(ctx, style_image, config._replace(noise_std=NOISE_STD, stability_weight=STABILITY))
    previews = np.stack([resize(photo(n), 256) for n in PREVIEWS])
    out = np.asarray(main(previews))
    grid = image_grid(np.concatenate([resize(style_image, 256)[None], out]), ncols=len(PREVIEWS) + 1, labels=["style", *PREVIEWS])
    figures = {"stylised": _figure(ctx, grid, f"fast style transfer: {STYLE_IMAGE} (left) applied in one pass to 256 px photos by a transformer "
                                   f"network (width {config.width}, {config.residual_blocks} residual blocks, {config.steps} Adam steps on "
                                   f"{config.size} px crops)", "generate-fast-style")}

    losses = perceptual_losses(style_image, size=config.size)
    steps = 20 if ctx.quick else 100
    cmp = compare_with_optimisation(main, losses, previews[:1], steps=steps)
    figures["versus_optimisation"] = _figure(
        ctx, image_grid(np.stack([previews[0], *cmp.images]), ncols=3, labels=["content", "feed-forward", f"{cmp.steps} L-BFGS"]),
        f"one feed-forward pass ({cmp.feedforward_ms:.0f} ms) against {cmp.steps} L-BFGS iterations on the same losses "
        f"({cmp.optimisation_s:.1f} s, compile apart)", "generate-versus-optimisation")
    ctx.log(f"[generation] 256 px: feed-forward {cmp.feedforward_ms:.1f} ms, {cmp.steps} L-BFGS {cmp.optimisation_s:.2f} s "
            f"({cmp.speedup:.0f}x); style loss {cmp.feedforward['style']:.3f} vs {cmp.optimised['style']:.3f}")

    sensitivity = {name: noise_sensitivity(net, previews, std=NOISE_STD) for name, net in (("plain", main), ("noise-robust", robust))}
    noisy = np.clip(previews[:1] + NOISE_STD * np.random.default_rng(ctx.seed).standard_normal(previews[:1].shape), 0, 1).astype(np.float32)
    figures["noise"] = _figure(
        ctx, image_grid([_zoom(np.asarray(n(x))[0], 96, 2) for n in (main, robust) for x in (previews[:1], noisy)], ncols=2,
                        labels=["plain, clean", "plain, noisy", "robust, clean", "robust, noisy"]),
        f"outputs for a clean input and one with Gaussian noise (std {NOISE_STD}), without and with noise-robust training; "
        f"mean change {sensitivity['plain']:.4f} vs {sensitivity['noise-robust']:.4f}", "generate-noise")
    ctx.log(f"[generation] output change under noise {NOISE_STD}: plain {sensitivity['plain']:.4f}, robust {sensitivity['noise-robust']:.4f}")

    checker = [_scored(ctx, "transformer", up, np.asarray(net(previews[:1]))[0]) for up, net in nets.items()]
    return {"config": config._asdict(), "style_image": STYLE_IMAGE, "feedforward_ms_256px": cmp.feedforward_ms,
            "optimisation_s_256px": cmp.optimisation_s, "optimisation_compile_s": cmp.optimisation_compile_s,
            "optimisation_steps": cmp.steps, "speedup": cmp.speedup, "feedforward_losses": cmp.feedforward,
            "optimised_losses": cmp.optimised, "style_loss_ratio": cmp.feedforward["style"] / cmp.optimised["style"],
            "noise_std": NOISE_STD, "output_change_under_noise": sensitivity, "figures": figures}, checker


def _scored(ctx: TourContext, network: str, upsampling: str, img: np.ndarray, tile: int | None = None) -> dict:
    """Save a variant's output and score the saved 8-bit PNG, so the numbers follow from the file.

    ``tile``: the image is an unpadded mosaic of outputs this many pixels square; the score is the
    mean over its tiles (each output scored on its own, as a generator's outputs are).
    """
    path = f"generate/{network}-{upsampling}.png"
    save_png(ctx.out / path, img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])
    saved = load_image(ctx.out / path)
    parts = saved[None] if tile is None else tiles(saved, tile)
    return {"network": network, "upsampling": upsampling, "score": float(checkerboard_score(parts).mean()),
            "score_gradient": float(checkerboard_score(parts, gradient=True).mean()), "outputs": len(parts), "tile": tile, "image": path,
            "_zoom": _zoom(saved)}


def _checkerboard_figure(ctx: TourContext, checker: list) -> str:
    labels = [f"{c['network'][:11]} {c['upsampling']}: {c['score']:.2f}" for c in checker]
    return _figure(ctx, image_grid([c.pop("_zoom") for c in checker], ncols=len(UPSAMPLINGS), labels=labels),
                   "checkerboard artifacts (Odena et al. 2016): the same network with stride-2 transposed convolutions of kernel 3 "
                   "and 4 and with resize-convolution (columns), enlarged crops; the number is the power at the stride-2 frequencies "
                   "relative to the mean power (checkerboard score)", "generate-checkerboard")


def _generator(ctx: TourContext, checker: list) -> dict:
    figures, numbers = generator_tour(ctx.quick, ctx.seed, cache_dir(ctx.cache) / "generator", progress=ctx.progress)
    cfg = numbers["config"]
    rec = numbers["reconstruction"]
    paths = {
        "sweeps": _figure(ctx, figures["sweeps"], "images from features (Dosovitskiy et al. 2015): each transformation swept with the others "
                          "fixed, generated (upper) over rendered (lower) rows", "generate-sweeps"),
        "morph": _figure(ctx, figures["morph"], "morphing: the one-hot identity input interpolated between two items", "generate-morph"),
        "arithmetic": _figure(ctx, figures["arithmetic"], "arithmetic in a hidden layer: h(a, r1) - h(a, r0) + h(b, r0), decoded, "
                              "beside the generator's own (b, r1) and the rendering", "generate-arithmetic"),
    }
    for variant in numbers["checkerboard"]:  # the study's 64 outputs, saved as a mosaic and scored output by output
        checker.append(_scored(ctx, "generator", variant["upsampling"], figures[f"checkerboard-outputs-{variant['upsampling']}"],
                               tile=numbers["checkerboard_config"]["canvas"]))
    ctx.log(f"[generation] generator ({cfg.get('n_items')} items): image MSE train {rec['train']['image_mse']:.4f}, "
            f"held-out {rec['held_out']['image_mse']:.4f}")
    # the study's own scores (means over 64 outputs, residuals, untrained networks) stay with the generator's numbers
    return {**{k: v for k, v in numbers.items() if k != "checkerboard"}, "checkerboard_study": numbers["checkerboard"], "figures": paths}


ADAIN_CAPTIONS = {
    "grid": "arbitrary style transfer (AdaIN, Huang & Belongie 2017): contents by styles, one trained decoder, one pass each",
    "alpha": "the content-style trade-off alpha, from the content's features (0) to the full AdaIN target (1)",
    "interpolation": "interpolation between two styles by weighting their feature statistics",
    "color": "colour preservation: the style's colours matched to the content's before the transfer",
}


def _adain(ctx: TourContext) -> dict:
    figures, numbers = adain_tour(ctx.quick, ctx.seed, cache_dir(ctx.cache) / "adain", progress=ctx.progress)
    paths = {name: _figure(ctx, figures[name], caption, f"generate-adain-{name}") for name, caption in ADAIN_CAPTIONS.items()}
    ctx.log(f"[generation] AdaIN: {numbers.get('ms_per_256px_image')} ms per 256 px image")
    return {**numbers, "figures": paths}


def generation(ctx: TourContext) -> dict:
    ctx.report.section("Generation", "Networks that make an image in one pass: fast style transfer (Johnson et al. 2016, instance "
                       "norm of Ulyanov et al. 2016) with SqueezeNet 1.1 as the loss network, images generated from an identity "
                       "and transformation parameters (Dosovitskiy et al. 2015), and the checkerboard artifacts of transposed "
                       "convolutions in both networks (Odena et al. 2016).")
    summary, checker = _fast_style(ctx)
    summary["generator"] = _generator(ctx, checker)
    if not ctx.quick:  # the quick section stays within its time budget without it; notebooks/generate.ipynb shows it
        summary["adain"] = _adain(ctx)
        summary["figures"].update({f"adain_{k}": v for k, v in summary["adain"].pop("figures").items()})
    summary["figures"]["checkerboard"] = _checkerboard_figure(ctx, checker)
    summary["figures"].update({f"generator_{k}": v for k, v in summary["generator"].pop("figures").items()})
    summary["checkerboard"] = checker
    section = ctx.report.section("Generation")
    section.table([{k: v for k, v in c.items() if k != "image"} for c in checker],
                  caption="checkerboard score of each variant's saved output, of the pixels and of their finite differences (1: white noise)")
    section.table([{"image": name, **summary[key]} for name, key in (("feed-forward", "feedforward_losses"), ("L-BFGS", "optimised_losses"))],
                  caption=f"losses at 256 px: one pass {summary['feedforward_ms_256px']:.1f} ms, {summary['optimisation_steps']} L-BFGS "
                          f"iterations {summary['optimisation_s_256px']:.2f} s ({summary['speedup']:.0f}x)")
    ctx.log("[generation] checkerboard: " + ", ".join(f"{c['network']} {c['upsampling']} {c['score']:.2f}" for c in checker))
    return {"generate": summary}
