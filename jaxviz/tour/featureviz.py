"""Tour section "What units want to see": channel atlases, class images (robust vs unregularised, with
their probabilities), diversity, DeepDream and a semantic dictionary."""

from __future__ import annotations

import jax
import numpy as np

from jaxviz import featureviz as fv
from jaxviz.data import load_image, photo, resize
from jaxviz.featureviz import transforms as T
from jaxviz.tour.core import TourContext
from jaxviz.viz import image_grid, save_png

# the lecture's classes: dumbbell, cup, dalmatian, bell pepper, lemon, Siberian husky
IMAGENET_CLASSES = (543, 968, 251, 945, 951, 250)
QUICK = dict(sq_size=64, sq_steps=32, sq_layers=("fire4",), sq_channels=8, lenet_steps=64, dream_size=96, dream_octaves=2, dream_steps=5,
             classes=(), class_steps=0)
FULL = dict(sq_size=96, sq_steps=128, sq_layers=("fire3", "fire5", "fire7", "fire9"), sq_channels=8, lenet_steps=256, dream_size=224,
            dream_octaves=3, dream_steps=10, classes=IMAGENET_CLASSES, class_steps=64)


def _class_study(ctx, model, classes, size, steps, key, scale):
    """Class images of ``classes`` in both settings; figure, table rows and summary entries."""
    rows, entries, tiles, labels = [], [], [], []
    for setting, k in zip(fv.classes.SETTINGS, jax.random.split(key)):
        out = fv.class_images(model, classes, setting=setting, size=size, steps=steps, key=k, progress=ctx.progress)
        paths = [save_png(ctx.out / "featureviz" / f"class-{model.name}-{int(c)}-{setting}.png", img) for c, img in zip(out.classes, out.images)]
        reread = np.stack([load_image(p, mode=None) for p in paths])  # judged as saved: the 8-bit PNG read back
        prob = fv.probability(model, reread, out.classes)
        robust = fv.robust_probability(model, reread, out.classes, key=k)
        for c, img, p, rp, path in zip(out.classes, reread, prob, robust, paths):
            name = model.class_names[c] if model.class_names else str(c)
            entries.append({"model": model.name, "class_id": int(c), "setting": setting, "image": str(path.relative_to(ctx.out)),
                            "prob": float(p), "robust_prob": float(rp)})
            rows.append({"model": model.name, "class": f"{name} ({c})", "setting": setting, "prob": float(p), "robust prob": float(rp)})
            tiles.append(img)
            labels.append(f"{name[:10]} {setting[:3]} {p:.2f}/{rp:.2f}")
    ncols = len(classes)
    return image_grid(np.stack(tiles), ncols=ncols, labels=labels, scale=scale), rows, entries


def _top_examples(model, layer, channels, x, batch=500):
    """The largest channel means of ``layer`` over the images ``x``: the data set's top examples per channel."""
    best = np.full(len(channels), -np.inf, np.float32)
    f = jax.jit(lambda m, xb: m.activations(xb, [layer])[layer].mean(axis=(1, 2)))
    for i in range(0, len(x), batch):
        best = np.maximum(best, np.asarray(f(model, x[i:i + batch]))[:, channels].max(axis=0))
    return best


def regulariser_study(model, layer: str, channel: int, size: int, steps: int, key, progress: bool = False):
    """One channel rendered under each regulariser switched on alone, then Lucid's robust recipe.

    Returns the images and rows: the channel mean reached on the saved image as it is, its mean under
    the evaluation shifts/rescalings, total variation and the patch prior's energy (0.5 is typical of photos).
    """
    obj = fv.channel(layer, channel)
    settings = {
        "pixels": (fv.pixel_param(size), T.NONE, fv.Regularisers()),
        "pixels + TV": (fv.pixel_param(size), T.NONE, fv.Regularisers(tv=1000.0)),
        "pixels + L2": (fv.pixel_param(size), T.NONE, fv.Regularisers(l2=2000.0)),
        "pixels + blur/4": (fv.pixel_param(size), T.NONE, fv.Regularisers(blur_every=4, blur_sigma=1.0)),
        "pixels + prior": (fv.pixel_param(size), T.NONE, fv.Regularisers(prior=20.0)),
        "pixels + transforms": (fv.pixel_param(size), T.STANDARD, fv.Regularisers()),
        "Fourier + decorrelated": (fv.image_param(size), T.NONE, fv.Regularisers()),
        "robust (all three)": (fv.image_param(size), T.STANDARD, fv.Regularisers()),
    }
    prior = fv.patch_prior(3)
    images, rows = [], []
    for name, (param, transforms, regs) in settings.items():
        r = fv.render(model, obj, param, key=key, steps=steps, transforms=transforms, regularisers=regs, progress=progress)
        img = fv.quantise(r.images)
        shifted = fv.classes.EVAL_TRANSFORM(key, img)
        rows.append({"setting": name, "channel mean": float(fv.score(model, obj, img)[0]),
                     "under shifts/scales": float(fv.score(model, obj, shifted)[0]),
                     "total variation": float(fv.total_variation(img)[0]), "prior energy": float(fv.prior_energy(prior, img)[0])})
        images.append(img[0])
    return np.stack(images), rows


def toward_class(model, x, targets, steps: int, key, progress: bool = False):
    """Turn images ``x`` toward classes ``targets`` (one per image): start the pixel parameters at the images and
    maximise the logit with small Adam steps (no transforms, no regularisers). Returns the new 8-bit images and the target
    probability before and after."""
    param = fv.pixel_param(x.shape[1:3], len(x), x.shape[-1], squash="clip")  # clip: black/white pixels are not saturated
    r = fv.render(model, fv.class_logit(targets), param, key=key, steps=steps, init=param.encode(x), transforms=T.NONE,
                  optimizer=fv.adam(0.01), progress=progress)
    img = fv.quantise(r.images)
    return img, fv.probability(model, x, targets), fv.probability(model, img, targets)


def featureviz(ctx: TourContext) -> dict:
    s = QUICK if ctx.quick else FULL
    key = jax.random.key(ctx.seed)
    k_lenet, k_atlas, k_div, k_dream, k_cls, k_dict = jax.random.split(key, 6)
    section = ctx.report.section("What units want to see", "Feature visualisation (Olah et al. 2017): images optimised to excite a unit, "
                                 "through a Fourier, colour-decorrelated parameterisation and random pad/jitter/scale/rotation; class images "
                                 "(Simonyan et al. 2014); DeepDream (Mordvintsev et al. 2015); a semantic dictionary (Olah et al. 2018).")
    summary: dict = {"classes": [], "activation_vs_dataset": [], "atlas": []}

    # 1. the small classifier: class images and conv2 channels vs the data set's top examples
    lenet, data, _ = ctx.classifier()
    grid, rows, entries = _class_study(ctx, lenet, list(range(len(lenet.class_names))), 28, s["lenet_steps"], k_lenet, 3)
    section.figure(grid, "LeNet class images, top row robust (transforms + Fourier + decorrelation), bottom row raw pixels; "
                   "labels: probability as saved / mean under shifts <= 8 px and scales 0.9-1.1", name="featureviz-lenet-classes")
    section.table(rows, caption="LeNet class images: target probability of the saved 8-bit image and under small shifts and rescalings")
    summary["classes"] += entries
    channels = list(range(16))
    top = _top_examples(lenet, "conv2", channels, data.x_test)
    obj = fv.channel("conv2", channels)
    reached = {}
    # sd 0.5: a unit that is zero on flat grey gets no gradient, so start from visible noise
    for name, param, transforms in (("robust", fv.image_param(28, 16, 1, sd=0.5), T.STANDARD), ("pixels", fv.pixel_param(28, 16, 1, sd=0.5), T.NONE)):
        r = fv.render(lenet, obj, param, key=k_lenet, steps=s["lenet_steps"], transforms=transforms, progress=ctx.progress)
        reached[name] = np.asarray(fv.score(lenet, obj, fv.quantise(r.images)))
        section.figure(image_grid(r.images, ncols=16, scale=3), f"LeNet conv2 channels 0-15, {name}", name=f"featureviz-lenet-conv2-{name}")
    act_rows = [{"channel": c, "top test image": float(top[i]), "robust / top": float(reached["robust"][i] / top[i]),
                 "pixels / top": float(reached["pixels"][i] / top[i])} for i, c in enumerate(channels)]
    section.table(act_rows, caption=f"LeNet conv2: channel mean reached by the visualisation vs the largest over the {len(data.x_test)} test images")
    summary["activation_vs_dataset"] = [{"model": "lenet", "layer": "conv2", **{k.replace(" ", "_").replace("/", "over"): v for k, v in r.items()}} for r in act_rows]

    # a test image of each of the first classes turned toward the next class
    n_turn = 4
    x = np.stack([data.x_test[np.flatnonzero(data.y_test == c)[0]] for c in range(n_turn)])
    turned, before, after = toward_class(lenet, x, (np.arange(n_turn) + 1) % 10, 32, k_lenet, ctx.progress)
    section.figure(image_grid(np.concatenate([x, turned]), ncols=n_turn, scale=3,
                              labels=[f"{c} p({(c + 1) % 10})={b:.2f}" for c, b in zip(range(n_turn), before)] + [f"-> {(c + 1) % 10}: {a:.2f}" for c, a in zip(range(n_turn), after)]),
                   "LeNet: test images (top) turned toward the next class (bottom), 32 steps on the logit from the image itself", name="featureviz-lenet-toward")
    summary["toward_class"] = [{"model": "lenet", "from": c, "to": (c + 1) % 10, "prob_before": float(b), "prob_after": float(a)}
                               for c, b, a in zip(range(n_turn), before, after)]

    # 2. SqueezeNet: the first channels of each layer, all layers in one batch (one-hot per-image weights), diversity
    model = ctx.imagenet().model
    layers, n = s["sq_layers"], s["sq_channels"]
    block = np.eye(len(layers), dtype=np.float32).repeat(n, axis=1)  # (layers, layers * n)
    atlas_obj = sum(fv.weighted(fv.channel(layer, list(range(n)) * len(layers)), block[i]) for i, layer in enumerate(layers))
    r = fv.render(model, atlas_obj, fv.image_param(s["sq_size"], len(layers) * n), key=k_atlas, steps=s["sq_steps"], progress=ctx.progress)
    section.figure(image_grid(r.images, ncols=n, labels=[f"{layer}:{c}" for layer in layers for c in range(n)]),
                   f"SqueezeNet channels 0-{n - 1} of {', '.join(layers)}, one row per layer, rendered as one batch "
                   f"({s['sq_steps']} steps at {s['sq_size']} px)", name="featureviz-atlas")
    summary["atlas"] = [{"layer": layer, "channels": n, "final_objective": r.objective[-1, i * n:(i + 1) * n].tolist()} for i, layer in enumerate(layers)]
    div_layer = s["sq_layers"][-1]
    r = fv.render(model, fv.channel(div_layer, 1) + 20.0 * fv.diversity(div_layer), fv.image_param(s["sq_size"], 4), key=k_div,
                  steps=s["sq_steps"], progress=ctx.progress)
    section.figure(image_grid(r.images, ncols=4), f"SqueezeNet {div_layer}:1, four images made different by a diversity term", name="featureviz-diversity")

    if not ctx.quick:
        imgs, rows = regulariser_study(model, "fire6", 2, 64, 64, k_div, ctx.progress)
        section.figure(image_grid(imgs, ncols=len(rows), labels=[r["setting"][:16] for r in rows]),
                       "SqueezeNet fire6:2 with one regulariser at a time, then all of Lucid's", name="featureviz-regularisers")
        section.table(rows, caption="fire6:2: channel mean of the saved image, under shifts <= 8 px and scales 0.9-1.1, its total variation and patch-prior energy")
        summary["regularisers"] = rows

    # 3. DeepDream on a photo
    img = resize(photo("chelsea"), s["dream_size"])[None]
    d = fv.deepdream(model, img, "fire5", key=k_dream, octaves=s["dream_octaves"], steps=s["dream_steps"], jitter=8, progress=ctx.progress)
    section.figure(image_grid(np.concatenate([img, d.image]), ncols=2, labels=["chelsea", "DeepDream fire5"]),
                   f"DeepDream: {s['dream_octaves']} octaves x {s['dream_steps']} steps on mean(fire5**2)", name="featureviz-dream")
    summary["dream"] = {"layer": "fire5", "objective_first": float(d.objective[0, 0, 0]), "objective_last": float(d.objective[-1, -1, 0])}

    # 4. SqueezeNet class images (full mode: at the network's input size, so the saved PNGs are judged as rendered)
    if s["classes"]:
        grid, rows, entries = _class_study(ctx, model, list(s["classes"]), model.input_shape[0], s["class_steps"], k_cls, 1)
        section.figure(grid, "SqueezeNet class images: top row robust, bottom row raw pixels without regularisation; "
                       "labels: probability as saved / under shifts and rescalings", name="featureviz-squeezenet-classes")
        section.table(rows, caption="SqueezeNet class images (prob: saved 8-bit PNG at 227 px; robust prob: mean over 16 random shifts <= 8 px and scales 0.9-1.1)")
        summary["classes"] += entries

        cat = resize(photo("chelsea"), model.input_shape[0])[None]
        img, before, after = toward_class(model, cat, np.array([951]), 32, k_cls, ctx.progress)
        section.figure(image_grid(np.concatenate([cat, img]), ncols=2, labels=[f"chelsea p(lemon)={before[0]:.2g}", f"-> lemon {after[0]:.2f}"]),
                       "SqueezeNet: the cat photo turned toward 'lemon' (951), 32 steps on the logit from the photo", name="featureviz-squeezenet-toward")
        summary["toward_class"].append({"model": model.name, "from": "chelsea", "to": 951, "prob_before": float(before[0]), "prob_after": float(after[0])})

        # 5. semantic dictionary of fire7 on a photo: each position's top channel by its visualisation
        photo_x = resize(photo("chelsea"), 160)
        sd = fv.semantic_dictionary(model, photo_x, "fire7")
        r = fv.channel_atlas(model, "fire7", sd.unique.tolist(), key=k_dict, size=48, steps=s["sq_steps"] // 2, progress=ctx.progress)
        section.figure(image_grid([photo_x, resize(fv.dictionary_figure(sd, r.images, tile=16), 160)], ncols=2),
                       f"semantic dictionary of fire7: at each of {sd.channels.shape[0]}x{sd.channels.shape[1]} positions, the most active channel's "
                       "visualisation, faded by its activation", name="featureviz-semantic-dictionary")
        summary["semantic_dictionary"] = {"layer": "fire7", "positions": list(sd.channels.shape[:2]), "channels": sd.unique.tolist()}
    ctx.log("[featureviz] " + ", ".join(f"{e['model']}:{e['class_id']}:{e['setting']} p={e['prob']:.2f}/{e['robust_prob']:.2f}" for e in summary["classes"][:6]))
    return {"featureviz": summary}
