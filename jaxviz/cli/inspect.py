"""Inside the network: filters, activations, top-k data-set examples per unit, feature-space
neighbours, t-SNE/PCA embeddings and the grand tour. Each writes its figures, OUT/inspect-<what>.json
and OUT/index.html.

The model is a zoo model (squeezenet, vgg16_hed), a trainable one (lenet, convnet: trained on
--dataset, or loaded from the cache when trained before) or a checkpoint folder written by
'jaxviz train'. Data-set images are converted to the model's channels and size."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HELP = "inside the network: filters, activations, top-k examples, neighbours, embeddings, grand tour"
WHAT = ("filters", "activations", "topk", "neighbours", "embed", "grand-tour")


def _common(parser) -> None:
    from jaxviz.data import DATASETS

    parser.add_argument("--model", default="lenet", help="lenet, convnet (trained on --dataset), squeezenet, vgg16_hed, or a checkpoint folder")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist5k", help="data set for top-k, neighbours, embeddings and the tour (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs for lenet/convnet when not cached (default: %(default)s; --quick: 2)")
    parser.add_argument("--size", type=int, default=None, help="image size for resizable models (default: the model's; SqueezeNet --quick: 96)")


def add_arguments(parser) -> None:
    from jaxviz.cli.main import common_options

    shared = common_options()
    for action in shared._actions:  # given before or after WHAT: the later one wins, no default overrides
        action.default = argparse.SUPPRESS
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = sub.add_parser("filters", parents=[shared], help="kernels as images, trained vs random weights, with the structure number")
    _common(p)
    p.add_argument("--kernel", default=None, help="kernel path, e.g. conv1 or fires/fire2/expand3x3 (default: the first layer)")
    p.add_argument("--normalize", choices=("per_filter", "shared"), default="per_filter")
    p = sub.add_parser("activations", parents=[shared], help="every channel of a layer for one image; zeros per layer; histograms")
    _common(p)
    p.add_argument("--image", default="0", help="a test-image index of --dataset, a bundled photo name or an image file (default: %(default)s)")
    p.add_argument("--layer", default=None, help="layer whose channels to show (default: the first)")
    p.add_argument("--batch", type=int, default=500, help="test images for the sparsity and histograms (default: %(default)s)")
    p = sub.add_parser("topk", parents=[shared], help="top-k training images per channel with receptive-field crops and projections")
    _common(p)
    p.add_argument("--layer", required=True)
    p.add_argument("--channels", default="0,1,2,3", help="comma-separated channels to draw (default: %(default)s)")
    p.add_argument("-k", type=int, default=9)
    p.add_argument("--reduce", choices=("max", "mean"), default="max")
    p.add_argument("--limit", type=int, default=None, help="use the first N training images (default: all)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--crops", choices=("auto", "yes", "no"), default="auto", help="receptive-field crops (auto: for spatial layers)")
    p = sub.add_parser("neighbours", parents=[shared], help="nearest training images in feature vs pixel space")
    _common(p)
    p.add_argument("--layer", required=True)
    p.add_argument("--queries", type=int, default=6, help="test images used as queries (default: %(default)s)")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--metric", choices=("cosine", "l2"), default="cosine")
    p.add_argument("--limit", type=int, default=None, help="use the first N training images (default: all)")
    p = sub.add_parser("embed", parents=[shared], help="t-SNE or PCA of a layer's features: scatter, image map, k-NN accuracy")
    _common(p)
    p.add_argument("--layer", required=True)
    p.add_argument("--method", choices=("tsne", "pca"), default="tsne")
    p.add_argument("--points", type=int, default=1000, help="test images embedded (default: %(default)s)")
    p.add_argument("--perplexity", type=float, default=30.0)
    p = sub.add_parser("grand-tour", parents=[shared], help="the grand tour: an HTML page animating each layer, plus a GIF")
    _common(p)
    p.add_argument("--layers", default=None, help="comma-separated layers (default: every layer after the first pooling)")
    p.add_argument("--points", type=int, default=500, help="test images shown (default: %(default)s)")
    p.add_argument("--frames", type=int, default=90, help="GIF frames (default: %(default)s)")


def load_model(args):
    """The model ``--model`` names, plus the data set (converted to the model's inputs)."""
    from jaxviz.data import load_dataset
    from jaxviz.errors import JaxvizError
    from jaxviz.models import PRETRAINED, TRAINABLE, get_model
    from jaxviz.train import TrainConfig, load_trained, train

    data = load_dataset(args.dataset)
    if args.model in TRAINABLE:
        if args.epochs < 1:
            raise JaxvizError(f"--epochs must be >= 1; got {args.epochs}")
        size = {28: 28, 32: 32}.get(data.x_train.shape[1])
        if size is None:
            raise JaxvizError(f"{args.model} is built for 28 or 32 px images; {data.name} has {data.x_train.shape[1]} px")
        model = get_model(args.model, data.x_train.shape[1:], data.class_names)
        config = TrainConfig(epochs=2 if args.quick else args.epochs, batch_size=64 if len(data.x_train) < 10000 else 128, learning_rate=2e-3, seed=args.seed)
        model = train(model, data, config, cache=args.cache_dir, progress=not args.no_progress).model
    elif args.model in PRETRAINED:
        model = get_model(args.model)
    elif Path(args.model).is_dir():
        model = load_trained(args.model)
    else:
        raise JaxvizError(f"--model {args.model!r} is not one of {', '.join([*TRAINABLE, *PRETRAINED])} nor a checkpoint folder")
    if model.resizable and (args.size or args.quick):
        s = args.size or 96
        model = model.replace(input_shape=(s, s, model.input_shape[-1]))
    return model, data


def convert(model, x):
    """Pixels ``(N, H, W, C)`` converted to the model's channels and size."""
    import numpy as np

    from jaxviz.data import resize, to_grey, to_rgb

    h, w, c = model.input_shape
    if x.shape[-1] != c:
        x = to_rgb(x) if c == 3 else to_grey(x)
    if x.shape[1:3] != (h, w):
        x = resize(x, (h, w))
    return np.asarray(x, np.float32)


def _split(spec: str | None, what: str) -> list:
    from jaxviz.errors import JaxvizError

    if spec is None:
        return []
    try:
        return [int(v) for v in spec.split(",") if v.strip()] if what == "int" else [v.strip() for v in spec.split(",") if v.strip()]
    except ValueError:
        raise JaxvizError(f"expected comma-separated integers; got {spec!r}") from None


def _limit(x, n):
    from jaxviz.errors import JaxvizError

    if n is None:
        return x
    if n < 0:
        raise JaxvizError(f"--limit must be >= 0; got {n}")
    return x[:n]


def run(args) -> int:
    from jaxviz.viz import Report

    model, data = load_model(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, f"jaxviz inspect {args.what}")
    record = {"what": args.what, "model": model.name, "dataset": data.name}
    record.update(RUNNERS[args.what](args, model, data, report))
    record["figures"] = list(report.figures)
    report.write()
    (out / f"inspect-{args.what}.json").write_text(json.dumps(record, indent=2))
    print(f"wrote {', '.join(str(out / f) for f in report.figures)}, {out / 'index.html'}")
    return 0


def _filters(args, model, data, report) -> dict:
    import jax

    from jaxviz import inspect as I

    name, kernel = I.first_kernel(model) if args.kernel is None else (args.kernel, I.kernel_of(model, args.kernel))
    random = I.random_weights(model, jax.random.key(args.seed))
    k_random = I.kernel_of(random, name)
    trained, untrained = I.filter_structure(kernel), I.filter_structure(k_random)
    panels = {f"{model.name} {name}: {trained:.3f}": I.filter_images(kernel, normalize=args.normalize),
              f"random weights: {untrained:.3f}": I.filter_images(k_random, normalize=args.normalize)}
    cin = kernel.shape[2]
    report.section("Filters", "Neighbour correlation of adjacent weights (about 0 for random weights).").figure(
        I.figures.filters_figure(panels, ncols=None if cin in (1, 3) else cin), f"{name}: trained vs random weights", name=f"filters-{name.replace('/', '-')}")
    print(f"{name}: filter structure {trained:.4f} (random weights {untrained:.4f})")
    return {"kernel": name, "filter_structure": trained, "filter_structure_random": untrained}


def _image(args, model, data):
    import numpy as np

    from jaxviz.data import PHOTOS, load_image, photo

    spec = args.image
    if spec.isdigit():
        from jaxviz.errors import JaxvizError

        i = int(spec)
        if i >= len(data.x_test):
            raise JaxvizError(f"--image {i} is out of range: {data.name} has {len(data.x_test)} test images")
        img = data.x_test[i]
    else:
        img = photo(spec) if spec in PHOTOS and not Path(spec).exists() else load_image(spec, mode=None)
    return convert(model, np.asarray(img)[None])[0]


def _activations(args, model, data, report) -> dict:
    from jaxviz import inspect as I
    from jaxviz.viz import image_grid

    img = _image(args, model, data)
    spatial = [n for n, s in model.layer_shapes().items() if len(s) == 4]
    layer = args.layer or (spatial[0] if spatial else model.layers[0])
    maps = I.activation_maps(model, img, layer)
    x = convert(model, data.x_test[: max(1, args.batch)])
    zeros = I.zero_fraction(model, x)
    hists = I.activation_histograms(model, x)
    sec = report.section("Activations")
    sec.figure(image_grid(img[None], scale=max(1, 96 // img.shape[0])), "input", name="activations-input")
    sec.figure(image_grid(maps, scale=max(1, 48 // maps.shape[1]), pad_value=0.5), f"{layer}: every channel (each stretched to its maximum)", name=f"activations-{layer}")
    sec.figure(I.figures.sparsity_figure({model.name: zeros}), f"fraction of exact zeros per layer over {len(x)} test images", name="sparsity")
    sec.figure(I.figures.histograms_figure(hists, channel_layer=layer), "activation histograms per layer and per channel", name="histograms")
    for n, z in zeros.items():
        print(f"{n:12s} zeros {z:.3f}")
    return {"layer": layer, "zero_fraction": zeros}


def _topk(args, model, data, report) -> dict:
    from jaxviz import inspect as I

    x = convert(model, _limit(data.x_train, args.limit))
    channels = _split(args.channels, "int")
    t0 = time.perf_counter()
    result = I.top_k(model, x, [args.layer], k=args.k, reduce=args.reduce, batch_size=args.batch_size)[args.layer]
    seconds = time.perf_counter() - t0
    spatial = len(model.layer_shapes()[args.layer]) == 4
    if args.crops == "yes" or (args.crops == "auto" and spatial):
        field = I.receptive_field(model, args.layer)
    else:
        field = None
    figure = I.figures.topk_figure(model, x, result, args.layer, channels, projections=True) if field is not None or not spatial else _whole_images(model, x, result, args.layer, channels)
    report.section("Top-k examples").figure(figure, f"{args.layer}: top {args.k} of {len(x)} training images per channel ({args.reduce} over space), then deconvnet projections", name=f"topk-{args.layer}")
    print(f"top-{args.k} of {args.layer} over {len(x)} images in {seconds:.2f} s ({len(x) / seconds:.0f} images/s, compile included)")
    return {"layer": args.layer, "k": args.k, "images": len(x), "seconds": seconds, "channels": channels,
            "receptive_field": None if field is None else field._asdict(),
            "values": result.values[channels].tolist(), "indices": result.indices[channels].tolist()}


def _whole_images(model, x, result, layer, channels):
    from jaxviz.inspect._common import check_channel
    from jaxviz.viz import image_grid

    tiles = []
    for ch in channels:
        check_channel(layer, result.values.shape[0], ch)
        tiles += list(x[result.indices[ch]])
    return image_grid(tiles, ncols=result.values.shape[1], scale=max(1, 48 // x.shape[1]))


def _neighbours(args, model, data, report) -> dict:
    from jaxviz import inspect as I

    db = convert(model, _limit(data.x_train, args.limit))
    q = convert(model, data.x_test[: args.queries])
    f_db, f_q = I.features(model, db, args.layer), I.features(model, q, args.layer)
    nb_f = I.nearest_neighbours(f_q, f_db, args.k, metric=args.metric)
    nb_p = I.nearest_neighbours(I.pixels(q), I.pixels(db), args.k, metric=args.metric)
    report.section("Neighbours").figure(I.figures.neighbours_figure(q, db, nb_f, nb_p), f"query, {args.k} nearest in {args.layer} ({args.metric}), {args.k} nearest in pixels", name=f"neighbours-{args.layer}")
    same_f = float((data.y_train[: len(db)][nb_f.indices] == data.y_test[: len(q), None]).mean())
    same_p = float((data.y_train[: len(db)][nb_p.indices] == data.y_test[: len(q), None]).mean())
    print(f"neighbours of the query's class: {args.layer} {same_f:.2f}, pixels {same_p:.2f}")
    return {"layer": args.layer, "metric": args.metric, "same_class_feature": same_f, "same_class_pixel": same_p,
            "feature_indices": nb_f.indices.tolist(), "pixel_indices": nb_p.indices.tolist()}


def _embed(args, model, data, report) -> dict:
    from jaxviz import inspect as I

    x = convert(model, data.x_test[: args.points])
    y = data.y_test[: len(x)]
    f = I.features(model, x, args.layer)
    coords = I.embed(f, method=args.method, seed=args.seed, perplexity=args.perplexity)
    sec = report.section("Embedding")
    sec.figure(I.figures.embedding_figure(coords, y, data.class_names, f"{args.method} of {args.layer}"), f"{args.method} of {args.layer} over {len(x)} test images", name=f"embed-{args.layer}")
    grid = max(2, int(len(x) ** 0.5 * 0.8))
    sec.figure(I.image_map(x, coords, (grid, grid)), "the same layout as an image map (each image snapped to a grid cell)", name=f"embed-map-{args.layer}")
    ftr = I.features(model, convert(model, data.x_train[:5000]), args.layer)
    acc_f = I.knn_accuracy(ftr, data.y_train[:5000], f, y)
    acc_p = I.knn_accuracy(I.pixels(convert(model, data.x_train[:5000])), data.y_train[:5000], I.pixels(x), y)
    print(f"5-NN accuracy on {len(x)} test images: {args.layer} {acc_f:.3f}, pixels {acc_p:.3f}")
    return {"layer": args.layer, "method": args.method, "knn_accuracy_feature": acc_f, "knn_accuracy_pixel": acc_p}


def default_tour_layers(model) -> list[str]:
    """Layers after the first pooling (earlier ones are too close to pixels to be interesting)."""
    layers = list(model.layers)
    pools = [i for i, n in enumerate(layers) if n.startswith("pool")]
    return layers[pools[0] + 1 :] if pools else layers


def _grand_tour(args, model, data, report) -> dict:
    import jax

    from jaxviz import inspect as I

    layers = _split(args.layers, "str") or default_tour_layers(model)
    model.check_layers(layers)
    x = convert(model, data.x_test[: args.points])
    y = data.y_test[: len(x)]
    keys = jax.random.split(jax.random.key(args.seed), len(layers))
    views = {n: I.tour_view(I.features(model, x, n), k) for n, k in zip(layers, keys)}
    out = Path(args.out)
    page = I.grand_tour_html(views, y, out / "grand-tour.html", class_names=data.class_names, title=f"Grand tour of {model.name} on {data.name}")
    gif = I.grand_tour_gif(views[layers[-1]], y, out / "figures" / "grand-tour.gif", frames=args.frames)
    sec = report.section("Grand tour")
    sec.figure(gif, f"{layers[-1]}: the grand tour (open grand-tour.html for every layer, with controls)")
    print(f"grand tour of {', '.join(layers)}: {page}")
    return {"layers": layers, "page": page.name}


RUNNERS = {"filters": _filters, "activations": _activations, "topk": _topk, "neighbours": _neighbours, "embed": _embed, "grand-tour": _grand_tour}
