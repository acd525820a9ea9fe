"""Tour section "Inside the network": what the trained classifier (and SqueezeNet) learned, before
any optimisation -- filters, activations, top examples per unit, neighbours, embeddings and the
grand tour. Reuses the classifier section's trained LeNet and its data set."""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxviz import inspect as I
from jaxviz.generate.images import content_images
from jaxviz.tour.core import TourContext
from jaxviz.viz import image_grid

QUICK = dict(topk_images=None, knn_train=2000, knn_test=500, points=400, tsne_iter=500)
FULL = dict(topk_images=None, knn_train=10000, knn_test=2000, points=1000, tsne_iter=1000, squeezenet_crops=500)


def _filters(ctx, sec, models: dict) -> dict:
    """Trained vs random-weight first-layer filters of each model, with the structure number."""
    out = {}
    for i, (label, model) in enumerate(models.items()):
        name, kernel = I.first_kernel(model)
        random = I.random_weights(model, jax.random.fold_in(jax.random.key(ctx.seed), i))
        k_random = I.kernel_of(random, name)
        trained, untrained = I.filter_structure(kernel), I.filter_structure(k_random)
        sec.figure(I.figures.filters_figure({f"trained: {trained:.3f}": I.filter_images(kernel), f"random weights: {untrained:.3f}": I.filter_images(k_random)},
                                            ncols=8 if kernel.shape[-1] > 16 else None),
                   f"{label} {name} filters, trained vs random weights (neighbour correlation of adjacent weights)", name=f"inspect-filters-{model.name}")
        out[label] = {"kernel": name, "trained": trained, "random": untrained}
        ctx.log(f"[inspect] {label} {name} filter structure: trained {trained:.3f}, random {untrained:.3f}")
    return out


def _squeezenet_topk(ctx, sec) -> dict:
    """SqueezeNet's top 9 of random crops of the bundled photos for a few channels of two fire modules."""
    squeezenet = ctx.imagenet().model
    crops = content_images(size=227, scale=2.0, seed=ctx.seed, jitter=0.0).batch(0, FULL["squeezenet_crops"])
    layers = ["fire3", "fire5"]
    t0 = time.perf_counter()
    tops = I.top_k(squeezenet, crops, layers, k=9, batch_size=50)
    seconds = time.perf_counter() - t0
    fields = I.receptive_fields(squeezenet)
    for layer in layers:
        f = fields[layer]
        sec.figure(I.figures.topk_figure(squeezenet, crops, tops[layer], layer, list(range(4)), field=f),
                   f"SqueezeNet {layer}: top 9 of {len(crops)} random 227 px crops of the bundled photos per channel, cropped to the "
                   f"{f.size[0]}x{f.size[1]} px receptive field, then the deconvnet projections", name=f"inspect-topk-squeezenet-{layer}")
    ctx.log(f"[inspect] SqueezeNet top-9 of {', '.join(layers)} over {len(crops)} crops: {seconds:.1f} s")
    return {"images": len(crops), "layers": layers, "seconds": seconds, "receptive_fields": {n: fields[n]._asdict() for n in layers}}


def inspect(ctx: TourContext) -> dict:
    cfg = QUICK if ctx.quick else FULL
    model, data, _ = ctx.classifier()
    sec = ctx.report.section("Inside the network", f"LeNet-5 trained on {data.name}: weights and activations as pictures (Krizhevsky et al. 2012; "
                             "Zeiler & Fergus 2014; Yosinski et al. 2015), top training images per unit with receptive-field crops and deconvnet "
                             "projections, feature-space neighbours (Krizhevsky et al. 2012), t-SNE (van der Maaten & Hinton 2008) and the grand "
                             "tour (Li et al. 2020).")
    summary: dict = {"model": model.name, "dataset": data.name}
    untrained = I.random_weights(model, jax.random.key(ctx.seed + 1))
    models = {"LeNet": model, "SqueezeNet": ctx.imagenet().model}
    summary["filter_structure"] = _filters(ctx, sec, models)

    # activations, sparsity, histograms
    x_test = data.x_test[: cfg["knn_test"]]
    spatial = [n for n, s in model.layer_shapes().items() if len(s) == 4]
    for layer in spatial[::2][:2]:
        sec.figure(image_grid(I.activation_maps(model, data.x_test[0], layer), scale=4, pad_value=0.5),
                   f"{layer}: every channel for test image 0 (each stretched to its maximum)", name=f"inspect-activations-{layer}")
    sparsity = {"trained": I.zero_fraction(model, x_test), "untrained": I.zero_fraction(untrained, x_test)}
    if not ctx.quick:
        squeezenet, photos = ctx.imagenet()
        summary["sparsity_squeezenet_photos"] = I.zero_fraction(squeezenet, np.stack(list(photos.values())))
    sec.figure(I.figures.sparsity_figure(sparsity), f"fraction of exact zeros per layer over {len(x_test)} test images", name="inspect-sparsity")
    sec.figure(I.figures.histograms_figure(I.activation_histograms(model, x_test[:500]), channel_layer=spatial[0]),
               "activation histograms over 500 test images (log counts), and per channel of the first layer", name="inspect-histograms")
    summary["sparsity"] = sparsity

    # top-k over the whole training set, every layer, one compiled step
    x_train = data.x_train if cfg["topk_images"] is None else data.x_train[: cfg["topk_images"]]
    I.top_k(model, x_train[:256], k=9)  # compile outside the timing
    t0 = time.perf_counter()
    tops = I.top_k(model, x_train, k=9)
    seconds = time.perf_counter() - t0
    summary["topk"] = {"images": len(x_train), "layers": list(model.layers), "seconds": seconds, "images_per_s": len(x_train) / seconds}
    ctx.log(f"[inspect] top-9 of every channel of every layer over {len(x_train)} images: {len(x_train) / seconds:.0f} images/s")
    conv = spatial[-2] if len(spatial) > 1 else spatial[0]
    fields = I.receptive_fields(model)
    summary["receptive_fields"] = {n: f._asdict() for n, f in fields.items()}
    field = fields[conv]
    sec.figure(I.figures.topk_figure(model, x_train, tops[conv], conv, list(range(4)), field=field),
               f"{conv}: top 9 of {len(x_train)} training images per channel, cropped to the {field.size[0]}x{field.size[1]} px receptive field "
               "around the maximum, then the deconvnet projection of the unit on each", name=f"inspect-topk-{conv}")
    dense = [n for n in model.layers if n not in spatial and n != "logits"]
    penultimate = dense[-1] if dense else model.layers[-1]
    sec.figure(I.figures.topk_figure(model, x_train, tops[penultimate], penultimate, list(range(4))),
               f"{penultimate}: top 9 training images of 4 units, then their deconvnet projections", name=f"inspect-topk-{penultimate}")

    if not ctx.quick:
        summary["topk_squeezenet"] = _squeezenet_topk(ctx, sec)

    # neighbours and k-NN accuracy per layer
    db, y_db = data.x_train[: cfg["knn_train"]], data.y_train[: cfg["knn_train"]]
    y_test = data.y_test[: len(x_test)]
    f_db, f_test = I.layer_features(model, db, model.layers), I.layer_features(model, x_test, model.layers)
    queries = x_test[:6]
    nb_f = I.nearest_neighbours(f_test[penultimate][:6], f_db[penultimate], 5)
    nb_p = I.nearest_neighbours(I.pixels(queries), I.pixels(db), 5)
    sec.figure(I.figures.neighbours_figure(queries, db, nb_f, nb_p), f"test queries, their 5 nearest training images in {penultimate} (cosine), then in pixel space", name="inspect-neighbours")
    knn = {"pixels": I.knn_accuracy(I.pixels(db), y_db, I.pixels(x_test), y_test)}
    for n in model.layers:
        knn[n] = I.knn_accuracy(f_db[n], y_db, f_test[n], y_test)
    sec.table([{"space": k, "5-NN accuracy": v} for k, v in knn.items()], caption=f"5-NN accuracy (cosine) of {len(x_test)} test images among {len(db)} training images")
    summary["knn_accuracy"] = knn
    ctx.log("[inspect] 5-NN accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in knn.items()))

    # embeddings
    pts, y_pts = x_test[: cfg["points"]], y_test[: cfg["points"]]
    f_pen = f_test[penultimate][: len(pts)]
    tsne = I.embed(f_pen, seed=ctx.seed, max_iter=cfg["tsne_iter"], threads=1 if ctx.quick else None)
    pca = I.embed(f_pen, method="pca")
    sec.figure(I.figures.embedding_figure(tsne, y_pts, data.class_names, f"t-SNE of {penultimate}"), f"t-SNE of {penultimate} over {len(pts)} test images", name="inspect-tsne")
    sec.figure(I.figures.embedding_figure(pca, y_pts, data.class_names, f"PCA of {penultimate}"), f"PCA of {penultimate}", name="inspect-pca")
    side = int(np.sqrt(len(pts)) * 0.8)
    sec.figure(I.image_map(pts, tsne, (side, side)), "the t-SNE layout as an image map (Karpathy's cnnembed)", name="inspect-tsne-map")

    # grand tour
    layers = [n for n in model.layers if n not in spatial[:1]][-4:]
    keys = jax.random.split(jax.random.key(ctx.seed), len(layers))
    views = {n: I.tour_view(f_test[n][: len(pts)], k) for n, k in zip(layers, keys)}
    page = I.grand_tour_html(views, y_pts, ctx.out / "grand-tour.html", class_names=data.class_names, title=f"Grand tour of LeNet on {data.name}")
    gif = I.grand_tour_gif(views["logits"] if "logits" in views else views[layers[-1]], y_pts, ctx.out / "figures" / "inspect-grand-tour.gif", frames=45 if ctx.quick else 90)
    sec.figure(gif, f"the grand tour of the logits (open grand-tour.html for {', '.join(layers)}, with controls)")
    summary["grand_tour"] = page.relative_to(ctx.out).as_posix()
    summary["figures"] = [f for f in ctx.report.figures if "inspect-" in f]
    return {"inspect": summary}
