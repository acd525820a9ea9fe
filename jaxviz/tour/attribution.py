"""Tour section: which pixels matter? Every attribution method on the photos and on the small
classifier, side by side, with deletion/insertion AUC and the model-randomisation sanity check."""

from __future__ import annotations

import jax
import numpy as np

from jaxviz.tour.compare import DEFAULT_METHODS, SANITY_METHODS, Settings, attribution_maps, panel, sanity_check, score_maps, settings_for
from jaxviz.tour.core import TourContext
from jaxviz.train import predict

IMAGENET_PHOTOS = ("chelsea", "coffee")


def _study(ctx: TourContext, title: str, model, x, labels, settings: Settings, sanity_images: int, scale: int) -> dict:
    key = jax.random.key(ctx.seed)
    k_maps, k_sanity = jax.random.split(key)
    targets = predict(model, x)
    maps = attribution_maps(model, x, targets, DEFAULT_METHODS, key=k_maps, settings=settings)
    scores = score_maps(model, x, targets, maps, steps=settings.metric_steps, chunk_size=settings.chunk_size)
    sanity = sanity_check(model, x[:sanity_images], targets[:sanity_images], SANITY_METHODS, key=k_sanity, settings=settings) if sanity_images else {}
    names = [f"{lab}: {model.class_names[t][:12]}" for lab, t in zip(labels, targets)]
    section = ctx.report.section("Attribution")
    figure = f"attribution-{model.name}"
    section.figure(panel(x, maps, labels=names, scale=scale), f"{title}: {', '.join(DEFAULT_METHODS)} (target: predicted class)", name=figure)
    rows = [{"method": m, **{f"deletion {lab}": d for lab, d in zip(labels, scores.deletion_auc[m])},
             **{f"insertion {lab}": i for lab, i in zip(labels, scores.insertion_auc[m])}} for m in maps]
    section.table(rows, caption=f"{title}: deletion AUC (lower is better) and insertion AUC (higher is better) of the target probability")
    if sanity:
        section.table([{"method": m, **dict(zip(v["layers"], v["spearman"]))} for m, v in sanity.items()],
                          caption=f"{title}: Spearman rank correlation of |map| after randomising layers cumulatively from the output (low = the map depends on the weights)")
    ctx.log(f"[attribution] {title}: " + ", ".join(f"{m} del={np.mean(scores.deletion_auc[m]):.3f} ins={np.mean(scores.insertion_auc[m]):.3f}" for m in maps))
    return {
        "model": model.name,
        "images": list(labels),
        "targets": targets.tolist(),
        "methods": list(maps),
        "deletion_auc": {m: dict(zip(labels, v)) for m, v in scores.deletion_auc.items()},
        "insertion_auc": {m: dict(zip(labels, v)) for m, v in scores.insertion_auc.items()},
        "sanity_spearman": sanity,
        "panels": [f for f in ctx.report.figures if figure in f],
        "settings": settings._asdict(),
    }


def attribution(ctx: TourContext) -> dict:
    ctx.report.section("Attribution", "Occlusion (Zeiler & Fergus 2014), gradient (Simonyan et al. 2014), SmoothGrad (Smilkov et al. 2017), "
                       "guided backpropagation (Springenberg et al. 2015), Grad-CAM (Selvaraju et al. 2017), Integrated Gradients "
                       "(Sundararajan et al. 2017) and FullGrad (Srinivas & Fleuret 2019), scored by deletion/insertion (Petsiuk et al. 2018) "
                       "and the cascading randomisation check (Adebayo et al. 2018).")
    squeezenet, photos = ctx.imagenet()
    lenet, data, _ = ctx.classifier()
    names = IMAGENET_PHOTOS[:1] if ctx.quick else IMAGENET_PHOTOS
    imagenet = _study(ctx, "SqueezeNet on photos", squeezenet, np.stack([photos[n] for n in names]), names,
                      settings_for(squeezenet, ctx.quick), sanity_images=0 if ctx.quick else 1, scale=1)
    classifier = _study(ctx, f"LeNet on {data.name}", lenet, data.x_test[:4], [f"test{i}" for i in range(4)],
                        settings_for(lenet, ctx.quick), sanity_images=4, scale=4)
    return {"attribution": {"imagenet": imagenet, "classifier": classifier}}
