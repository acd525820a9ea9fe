"""Tour section: Gram-matrix texture synthesis from brick, grass and gravel (with the random-weights
baseline and, in full mode, Gatys' growing layer subsets), style transfer of a bundled photo with its
alpha/beta sweep and (full mode) the layer-subset x alpha/beta grid, and a neural doodle (full mode)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.data import TEXTURES, photo, resize, to_rgb
from jaxviz.style import (
    CAT_CLASSES,
    disjoint_crops,
    extractor,
    gram_distance,
    growing_subsets,
    kmeans_segments,
    neural_doodle,
    one_hot,
    random_weights,
    statistics,
    style_layers,
    style_transfer,
    synthesize_texture,
    texture_layers,
)
from jaxviz.tour.core import TourContext
from jaxviz.viz import image_grid, save_png

STYLE_IMAGE = "immunohistochemistry"  # the most colourful bundled image: stained tissue


def _one(stats, i):
    return {n: v[i:i + 1] for n, v in stats.items()}


def _textures(ctx: TourContext, model, size: int, steps: int) -> tuple[list, dict]:
    layers = texture_layers(model)
    pairs = [disjoint_crops(to_rgb(photo(t)), size) for t in TEXTURES]
    src, crops = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    key = jax.random.key(ctx.seed)
    kw = dict(layers=layers, method="lbfgs", steps=steps)
    variants = {"pretrained": synthesize_texture(model, src, key=key, **kw),
                "random weights": synthesize_texture(random_weights(model, jax.random.fold_in(key, 1)), src, key=key, **kw)}
    ext = extractor(model, layers)
    target = statistics(ext, src)
    crop_d = np.asarray(gram_distance(statistics(ext, crops), target))
    entries, rows = [], []
    for variant, res in variants.items():
        stats = statistics(ext, res.image)
        for i, name in enumerate(TEXTURES):
            d = {m: float(gram_distance(_one(stats, i), _one(target, j))[0]) for j, m in enumerate(TEXTURES)}
            path = f"style/texture-{name}{'-random' if variant != 'pretrained' else ''}.png"
            save_png(ctx.out / path, np.asarray(res.image[i]))
            entries.append({"source": name, "layers": list(layers), "weights": variant, "image": path,
                            "gram_distance_to_source": d[name], "gram_distance_to_others": {m: v for m, v in d.items() if m != name},
                            "crop_distance": float(crop_d[i]), "final_loss": float(res.loss[i])})
            rows.append({"texture": name, "weights": variant, "distance to source": d[name], "disjoint crop (bar)": float(crop_d[i]),
                         **{f"to {m}": v for m, v in d.items() if m != name}})
        ctx.log(f"[style] textures ({variant}): " + ", ".join(f"{e['source']} {e['gram_distance_to_source']:.3f}" for e in entries[-3:])
                + " (disjoint crops " + ", ".join(f"{c:.3f}" for c in crop_d) + ")")
    section = ctx.report.section("Style")
    grid = np.concatenate([src, *[np.asarray(r.image) for r in variants.values()]])
    section.figure(image_grid(grid, ncols=3, labels=[*TEXTURES, *[f"{v}: {t}" for v in variants for t in TEXTURES]], scale=max(1, 192 // size)),
                   f"textures on {model.name}, layers {', '.join(layers)}: sources, syntheses ({steps} L-BFGS steps from noise), random-weights baseline",
                   name="style-textures")
    section.table(rows, caption="relative Gram distance (mean over layers of |G - G_source| / |G_source|) of each synthesis to its source, "
                                "to the other textures, and of a disjoint crop of the source (the bar to beat)")
    return entries, {"src": src, "layers": layers}


def _subsets(ctx: TourContext, model, src, layers, size: int, steps: int) -> list:
    w = growing_subsets(layers)
    rows_w = np.repeat(w, len(src), axis=0)
    batch = np.tile(src, (len(layers), 1, 1, 1))
    res = synthesize_texture(model, batch, key=jax.random.key(ctx.seed + 1), layers=layers, weights=rows_w, method="adam",
                             steps=steps, learning_rate=0.05)
    ext = extractor(model, layers)
    d = np.asarray(gram_distance(statistics(ext, res.image), statistics(ext, batch)))
    labels = [f"up to {layers[i]}: {t}" for i in range(len(layers)) for t in TEXTURES]
    ctx.report.section("Style").figure(image_grid(np.asarray(res.image), ncols=len(src), labels=labels, scale=max(1, 192 // size)),
                                       f"textures matched with growing layer subsets (Gatys et al. 2015, Fig. 2; {steps} Adam steps), one row per subset",
                                       name="style-subsets")
    out = [{"source": TEXTURES[i % len(src)], "up_to": layers[i // len(src)], "gram_distance_all_layers": float(d[i])} for i in range(len(d))]
    ctx.report.section("Style").table(out, caption="distance at all texture layers of syntheses that matched only a prefix of them")
    return out


def _transfers(ctx: TourContext, model, size: int, steps: int, ratios) -> list:
    content = resize(photo("chelsea"), size)
    styles = {STYLE_IMAGE: resize(to_rgb(photo(STYLE_IMAGE)), size)}
    if not ctx.quick:
        styles["brick"] = resize(to_rgb(photo("brick")), size)
    entries, images, labels = [], [], []
    classify = jax.jit(lambda m, x: jax.nn.softmax(m(x)))
    for sname, s in styles.items():
        res = style_transfer(model, np.stack([content] * len(ratios)), s, content_weight=np.asarray(ratios), method="lbfgs", steps=steps)
        probs = np.asarray(classify(model, jnp.asarray(resize(np.asarray(res.image), model.input_shape[0]))))
        images += [s, *np.asarray(res.image)]
        labels += [sname[:14], *[f"a/b {r:g}" for r in ratios]]
        for i, r in enumerate(ratios):
            top = int(probs[i].argmax())
            path = f"style/chelsea-{sname}-{r:g}.png"
            save_png(ctx.out / path, np.asarray(res.image[i]))
            entries.append({"content": "chelsea", "style": sname, "alpha_beta": float(r), "image": path,
                            "style_loss": float(res.style_loss[i]), "content_loss": float(res.content_loss[i]),
                            "top1_class": model.class_names[top], "top1_id": top, "top1_is_cat": top in CAT_CLASSES,
                            "top1_prob": float(probs[i, top])})
        ctx.log(f"[style] chelsea x {sname}: " + ", ".join(f"a/b {e['alpha_beta']:g}: {e['top1_class'][:16]}" for e in entries[-len(ratios):]))
    section = ctx.report.section("Style")
    section.figure(image_grid(np.stack(images), ncols=len(ratios) + 1, labels=labels, scale=max(1, 192 // size)),
                   f"chelsea stylised ({steps} L-BFGS steps at {size} px, init content), one row per style, alpha/beta increasing",
                   name="style-transfers")
    section.table([{k: v for k, v in e.items() if k != "image"} for e in entries],
                  caption="normalised style and content losses (relative squared errors) and SqueezeNet's top-1 class of the result")
    return entries


def _layer_grid(ctx: TourContext, model, size: int, steps: int, ratios) -> list:
    """Gatys et al. (2016) Fig. 3: rows match the style at growing subsets of the style layers, columns
    increase alpha/beta; all in one batched L-BFGS run (per-image layer weights and content weights)."""
    layers = style_layers(model)
    content = resize(photo("chelsea"), size)
    style_image = resize(to_rgb(photo(STYLE_IMAGE)), size)
    rows = growing_subsets(layers)
    weights = np.repeat(rows, len(ratios), axis=0)
    alpha = np.tile(np.asarray(ratios, np.float32), len(layers))
    res = style_transfer(model, np.stack([content] * len(weights)), style_image, content_weight=alpha, style_layer_names=layers,
                         layer_weights=weights, method="lbfgs", steps=steps)
    labels = [f"to {layers[i]}, a/b {r:g}"[:18] for i in range(len(layers)) for r in ratios]
    ctx.report.section("Style").figure(
        image_grid(np.asarray(res.image), ncols=len(ratios), labels=labels, scale=max(1, 192 // size)),
        f"chelsea in the style of {STYLE_IMAGE}: one row per growing subset of the style layers, alpha/beta increasing to the right "
        f"(Gatys et al. 2016, Fig. 3; {steps} L-BFGS steps at {size} px)", name="style-layer-grid")
    out = [{"up_to": layers[i // len(ratios)], "alpha_beta": float(alpha[i]), "style_loss": float(res.style_loss[i]),
            "content_loss": float(res.content_loss[i])} for i in range(len(weights))]
    ctx.report.section("Style").table(out, caption="normalised style loss (at the subset's layers) and content loss of each cell of the grid")
    return out


def _doodle(ctx: TourContext, model, size: int, steps: int) -> dict:
    painting = resize(photo("coffee"), size)
    labels, centres = kmeans_segments(painting, 3, seed=ctx.seed)
    masks = one_hot(labels, 3)
    res = neural_doodle(model, painting, masks, masks[:, ::-1], key=jax.random.key(ctx.seed), steps=steps, tv_weight=1.0)
    d = np.asarray(res.segment_distance[0])
    save_png(ctx.out / "style/doodle.png", np.asarray(res.image[0]))
    ctx.report.section("Style").figure(
        image_grid([painting, centres[labels], centres[labels][:, ::-1], np.asarray(res.image[0])], ncols=4,
                   labels=["painting", "k-means segments", "new layout", "new painting"], scale=max(1, 192 // size)),
        f"neural doodle: coffee's three colour segments painted into the mirrored layout ({steps} L-BFGS steps)", name="style-doodle")
    ctx.log(f"[style] doodle: own-segment distances {np.diag(d).round(3).tolist()}, row minima on the diagonal: {bool(np.all(d.argmin(1) == np.arange(3)))}")
    return {"image": "style/doodle.png", "segment_distance": d.tolist(), "own_segment_closest": bool(np.all(d.argmin(1) == np.arange(3)))}


def style(ctx: TourContext) -> dict:
    ctx.report.section("Style", "Texture synthesis (Gatys, Ecker & Bethge 2015), style transfer (Gatys et al. 2016) and neural doodles "
                       "(Champandard 2016) on SqueezeNet 1.1: Gram matrices of feature maps, matched by Adam or L-BFGS.")
    model = ctx.imagenet().model
    size = 64 if ctx.quick else 128
    entries, info = _textures(ctx, model, size, 60 if ctx.quick else 100)
    ratios = (0.1, 10.0) if ctx.quick else (0.01, 0.1, 1.0, 10.0, 100.0)
    transfers = _transfers(ctx, model, 96 if ctx.quick else 128, 20 if ctx.quick else 60, ratios)
    summary = {"textures": entries, "transfers": transfers}
    if not ctx.quick:
        summary["subsets"] = _subsets(ctx, model, info["src"], info["layers"], size, 100)
        summary["layer_grid"] = _layer_grid(ctx, model, 96, 40, (0.1, 1.0, 10.0))
        summary["doodle"] = _doodle(ctx, model, 96, 80)
    cats = [t["alpha_beta"] for t in transfers if t["style"] == STYLE_IMAGE and t["top1_is_cat"]]
    summary["min_alpha_beta_still_cat"] = min(cats) if cats else None
    return {"style": summary}
