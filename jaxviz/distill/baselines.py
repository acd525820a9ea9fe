"""The baselines of Wang et al. (2018, Table 1) at the same image count, a core-set selection, the
cross-architecture protocol, and the table itself beside the paper's MNIST numbers.

Image baselines fill the same ``(steps, n)`` label slots as a distilled set and are trained exactly
like it (the learned-steps protocol (a), from the same fixed initialisation or fresh random ones):

* random real images, and "optimised real": the best ``keep`` fraction of ``num_sets`` random sets;
* k-means centres per class (:func:`~jaxviz.distill.kmeans_centres`) and the mean image per class
  (:func:`mean_images`, reused in every step as in the reference code);
* herding (Welling 2009, as used for exemplars by Rebuffi et al. 2017), a core-set selection
  (:func:`herding_images`, in pixel space unless features are given).

The baselines have no learned step sizes of their own; like the reference implementation, each set
is trained with the best constant step size of a grid, chosen by accuracy on a slice of the training
split (never the test split). Optimised real sets are ranked by that same training-slice accuracy.
k-NN classification (:func:`knn_accuracy`) uses random real images or k-means centres as the
reference set, with l1 or l2 distance and K in {1, 3}; the table reports the best of the four, as
the paper does.

References:
  Wang, Zhu, Torralba, Efros. "Dataset Distillation", arXiv:1811.10959 (2018), Section 4.1, Table 1.
  Welling. "Herding Dynamical Weights to Learn", ICML 2009.
  Rebuffi, Kolesnikov, Sperl, Lampert. "iCaRL: Incremental Classifier and Representation Learning",
  CVPR 2017 (herding selection of exemplars).
  Zhao, Mopuri, Bilen. "Dataset Condensation with Gradient Matching", ICLR 2021 (cross-architecture
  evaluation by training fresh networks of another architecture).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.data import Dataset
from jaxviz.distill.core import Distilled, DistillResult, initial_labels, inner_train, over_networks
from jaxviz.distill.evaluate import _accuracy, _per_class, _trained, evaluate, kmeans_centres, random_real, train_fresh
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models.contract import Model

STEP_SIZE_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # pixels in [0, 1]: learned first steps reach 1-2

# Wang et al. (2018), Table 1, MNIST: 100 images (10 steps x 3 epochs); baselines on random initialisations.
PAPER_MNIST = {
    ("distilled", "fixed"): "96.6",
    ("distilled", "random"): "79.5 +/- 8.1",
    ("random real", "random"): "68.6",
    ("optimised real", "random"): "73.0",
    ("k-means", "random"): "76.4",
    ("average real", "random"): "77.1",
    ("kNN random real", "random"): "71.5",
    ("kNN k-means", "random"): "92.2",
}
METHODS = ("distilled", "random real", "optimised real", "k-means", "average real", "herding", "kNN random real", "kNN k-means")


def mean_images(data: Dataset, labels: Any) -> np.ndarray:
    """The mean training image of each slot's class, ``(steps, n, H, W, C)``: Wang et al.'s "average real" baseline.

    Every slot of class ``c`` (in every step) holds the same image, the mean of all training images of
    class ``c``, as in the reference implementation.

    Args:
      data: the data set whose training split is averaged.
      labels: ``(steps, n)`` int classes of the slots.
    """
    labels = np.asarray(labels)
    pools = _per_class(data, labels)
    flat = labels.reshape(-1)
    out = np.empty((flat.size, *data.x_train.shape[1:]), np.float32)
    for c in np.unique(flat):
        out[flat == c] = np.mean(np.asarray(data.x_train[pools[c]], np.float64), axis=0)
    return out.reshape(*labels.shape, *data.x_train.shape[1:])


def herding(features: Any, m: int) -> np.ndarray:
    """Indices of ``m`` rows chosen by herding (Welling 2009; Rebuffi et al. 2017, Algorithm 4).

    Greedily picks, without replacement, the row that brings the mean of the rows picked so far closest
    (in l2) to the mean of all rows, so the first pick is the row nearest the mean.

    Args:
      features: ``(N, D)`` one row per candidate (pixels or a network's features).
      m: how many to pick, ``1 <= m <= N``.

    Returns:
      ``(m,)`` int indices in the order picked.
    """
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    if not 1 <= m <= len(f):
        raise JaxvizError(f"herding picks between 1 and {len(f)} rows here; got m={m}.")
    mu = f.mean(0)
    picked, total = [], np.zeros_like(mu)
    free = np.ones(len(f), bool)
    for k in range(1, m + 1):
        dist = np.sum((mu - (total[None] + f) / k) ** 2, axis=1)
        dist[~free] = np.inf
        i = int(np.argmin(dist))
        picked.append(i)
        free[i] = False
        total += f[i]
    return np.asarray(picked)


def herding_images(data: Dataset, labels: Any, *, features: Any = None) -> np.ndarray:
    """Training images chosen per class by :func:`herding`, filling the ``(steps, n)`` label slots: a core-set baseline.

    Args:
      data: the data set to select from.
      labels: ``(steps, n)`` int classes of the slots; class ``c`` gets as many picks as it has slots,
        in slot order.
      features: ``(N_train, D)`` features of the training images to herd in (for example a trained
        network's penultimate layer); ``None`` herds in pixel space.
    """
    labels = np.asarray(labels)
    pools = _per_class(data, labels)
    feats = np.asarray(data.x_train if features is None else features)
    if len(feats) != len(data.x_train):
        raise ShapeError(f"features must have one row per training image ({len(data.x_train)}); got {len(feats)}.")
    feats = feats.reshape(len(feats), -1)
    flat = labels.reshape(-1)
    out = np.empty((flat.size, *data.x_train.shape[1:]), np.float32)
    for c in np.unique(flat):
        where = np.flatnonzero(flat == c)
        out[where] = data.x_train[pools[c][herding(feats[pools[c]], len(where))]]
    return out.reshape(*labels.shape, *data.x_train.shape[1:])


def knn_accuracy(x_ref: Any, y_ref: Any, x: Any, y: Any, *, k: int = 1, p: int = 2) -> float:
    """Accuracy of k-nearest-neighbour classification of ``x`` with the reference set ``(x_ref, y_ref)``.

    Distances are l1 (``p=1``) or l2 (``p=2``) on flattened pixels, as in Wang et al.'s k-NN baselines.
    The majority class of the ``k`` nearest wins; a tie goes to the tied class with the nearest member.

    Args:
      x_ref, y_ref: reference images (any leading shape, flattened to one batch) and their int classes.
      x, y: images to classify and their true classes.
      k: neighbours that vote (at most the reference count).
      p: 1 or 2.
    """
    ref = np.asarray(x_ref, np.float32).reshape(np.size(y_ref), -1)
    yr = np.asarray(y_ref).reshape(-1)
    q = np.asarray(x, np.float32).reshape(len(x), -1)
    y = np.asarray(y).reshape(-1)
    if p not in (1, 2):
        raise JaxvizError(f"p must be 1 (l1) or 2 (l2); got {p}.")
    if not 1 <= k <= len(ref):
        raise JaxvizError(f"k must be between 1 and the {len(ref)} reference images; got {k}.")
    if ref.shape[1] != q.shape[1]:
        raise ShapeError(f"reference images have {ref.shape[1]} values each, the classified ones {q.shape[1]}.")
    classes = int(max(yr.max(), y.max())) + 1
    chunk = max(1, 2**24 // (len(ref) * ref.shape[1])) if p == 1 else 1024
    sq = np.sum(ref.astype(np.float64) ** 2, 1)
    correct = 0
    for i in range(0, len(q), chunk):
        qi = q[i:i + chunk]
        if p == 1:
            d = np.abs(qi[:, None] - ref[None]).sum(-1)
        else:
            d = sq[None] - 2.0 * qi.astype(np.float64) @ ref.T.astype(np.float64)  # + |q|^2, the same for every ref
        near = np.argsort(d, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(qi), classes))
        np.add.at(votes, (np.arange(len(qi))[:, None], yr[near]), 1.0)
        first = np.full((len(qi), classes), k, np.float64)  # rank of each class's nearest member
        for r in range(k - 1, -1, -1):
            first[np.arange(len(qi)), yr[near[:, r]]] = r
        pred = np.argmax(votes - first / (k + 1), axis=1)
        correct += int(np.sum(pred == y[i:i + chunk]))
    return correct / len(q)


class CrossArchitecture(NamedTuple):
    source: str  # the architecture the set was distilled with
    target: str  # the architecture trained on it
    mean: float
    std: float


def cross_architecture(sets: Mapping[str, tuple[Any, Any]], models: Mapping[str, Model], x_test: Any, y_test: Any, *,
                       epochs: int = 300, lr: float = 0.01, num_inits: int = 3, key: jax.Array | None = None) -> list[CrossArchitecture]:
    """Protocol (c): fresh networks of every architecture trained (:func:`train_fresh`) on sets distilled with every one.

    Args:
      sets: source architecture name -> ``(images, targets)`` (``Distilled.x``, ``Distilled.targets(classes)``).
      models: architecture name -> a model of that architecture (only its ``init``/``apply`` are used).
      x_test, y_test: the test split.
      epochs, lr, num_inits, key: passed to :func:`train_fresh` (the same key for every pair).

    Returns:
      one :class:`CrossArchitecture` per (source, target) pair, sources in ``sets`` order.
    """
    rows = []
    for source, (x, targets) in sets.items():
        for target, model in models.items():
            ev = train_fresh(model, x, targets, x_test, y_test, epochs=epochs, lr=lr, num_inits=num_inits, key=key)
            rows.append(CrossArchitecture(source, target, ev.mean, ev.std))
    return rows


@jax.jit
def _training_accuracy(model: Model, inits: Any, x: jax.Array, targets: jax.Array, lrs: jax.Array, xs: jax.Array, ys: jax.Array):
    """Accuracy on ``(xs, ys)`` of each init after the inner run with step sizes ``lrs``, ``(inits,)``."""
    params = over_networks(lambda p: inner_train(model, p, x, targets, lrs, remat=False), inits)
    logits = over_networks(model.apply, params, xs)
    return jnp.mean(jnp.argmax(logits, -1) == ys[None], axis=-1)


class TrainedBaseline(NamedTuple):
    """Image sets trained with their best constant step size, evaluated under protocol (a)."""

    step_sizes: np.ndarray  # (sets,) the chosen constant step size of each set
    train_scores: np.ndarray  # (sets,) accuracy on the training slice with it (mean over inits)
    test_accuracies: np.ndarray  # (sets, inits) test accuracy


def train_baseline(model: Model, images: Any, labels: Any, inits: Any, data: Dataset, *, epochs: int, select_inits: Any = None,
                   step_sizes: Sequence[float] = STEP_SIZE_GRID, select: int = 1000, seed: int = 0) -> TrainedBaseline:
    """Train image sets ``(sets, steps, n, H, W, C)`` like a distilled set, each with its best constant step size.

    The step size of each set is the grid value with the best mean accuracy over ``inits`` on ``select``
    random training images (the reference implementation picks a fixed step size for its baselines
    too); then each set is evaluated on the test split from every init.

    Args:
      model: the classifier.
      images: ``(sets, steps, n, H, W, C)`` image sets.
      labels: ``(steps, n)`` int classes of the slots.
      inits: a batch of initial parameters (leading axis), e.g. the fixed init with a new axis.
      data: training slice for the selection, test split for the evaluation.
      epochs: passes over the steps (one step size for all ``epochs * steps`` inner steps).
      select_inits: initialisations the step size is chosen with (default ``inits``; for random
        initialisations pass other draws than the evaluated ones).
      step_sizes: the grid.
      select: training images used to choose the step size.
      seed: which training images.
    """
    images = jnp.asarray(images, jnp.float32)
    labels = np.asarray(labels)
    if images.ndim != 6 or images.shape[1:3] != labels.shape:
        raise ShapeError(f"images must be (sets, steps, n, H, W, C) with (steps, n) = labels.shape {labels.shape}; got {images.shape}.")
    targets = jax.nn.one_hot(labels, model.num_classes)
    n_steps = images.shape[1] * epochs
    idx = np.random.default_rng(seed).choice(len(data.y_train), min(select, len(data.y_train)), replace=False)
    xs, ys = jnp.asarray(data.x_train[idx]), jnp.asarray(data.y_train[idx])
    select_inits = inits if select_inits is None else select_inits
    chosen, scores, tests = [], [], []
    for x in images:
        acc = [float(_training_accuracy(model, select_inits, x, targets, jnp.full((n_steps,), s, jnp.float32), xs, ys).mean()) for s in step_sizes]
        best = int(np.argmax(acc))
        chosen.append(step_sizes[best])
        scores.append(acc[best])
        d = Distilled(x, jnp.asarray(labels), jnp.full((n_steps,), math.log(math.expm1(step_sizes[best])), jnp.float32))
        tests.append(np.asarray(_accuracy(model, _trained(model, inits, d), data.x_test, data.y_test)))
    return TrainedBaseline(np.asarray(chosen), np.asarray(scores), np.stack(tests))


class Table1(NamedTuple):
    rows: list[dict]  # {"dataset", "init", "method", "images", "accuracy", "std", "note"}; accuracy in [0, 1]
    markdown: str


def _inits(model: Model, result: DistillResult, num_inits: int, key: jax.Array | None) -> tuple[Any, Any]:
    """(evaluated inits, inits that choose step sizes and rank sets): the fixed init twice, or two disjoint draws."""
    if result.init_params is not None:
        fixed = jax.tree.map(lambda a: a[None], result.init_params)
        return fixed, fixed
    key = jax.random.key(12345) if key is None else key
    return (jax.vmap(model.init)(jax.random.split(key, num_inits)),
            jax.vmap(model.init)(jax.random.split(jax.random.fold_in(key, 1), num_inits)))


def table1(model: Model, data: Dataset, results: DistillResult | Sequence[DistillResult], *, num_sets: int = 10,
           keep: float = 0.2, num_inits: int = 10, features: Any = None, step_sizes: Sequence[float] = STEP_SIZE_GRID,
           key: jax.Array | None = None, seed: int = 0) -> Table1:
    """Wang et al.'s Table 1 on ``data``: each distilled run beside every baseline at its image count.

    For each result, the baselines fill the same label slots (a soft-label run's slots by the class
    each image's labels started from: the baselines keep one class per image) and are trained from the
    same initialisation(s) with the same number of inner steps (:func:`train_baseline`): random real
    images (mean over ``num_sets`` sets), optimised real (the best ``keep`` fraction of those sets by
    training-slice accuracy), k-means centres, mean images, herding (pixels, or ``features``); k-NN
    classification with random real images and with k-means centres as references (best of l1/l2
    and K in {1, 3}; the note says which). Accuracies are on the test split; ``std`` is over
    initialisations and sets.

    Args:
      model: the architecture the sets were distilled for.
      data: the data set they were distilled from.
      results: one or more :class:`DistillResult` (fixed and/or random init, hard or soft labels).
      num_sets: random real sets drawn (optimised real keeps the best ``ceil(keep * num_sets)``).
      keep: fraction kept for optimised real (0.2 in the paper).
      num_inits: fresh initialisations for random-init results.
      features: training-image features for herding (``None``: pixels).
      step_sizes: grid of constant step sizes for the baselines.
      key: fresh initialisations (default ``key(12345)``, as :func:`~jaxviz.distill.evaluate`).
      seed: random sets, k-means and the selection slice.

    Returns:
      :class:`Table1` with one row per (dataset, init, method) and a markdown table with the paper's
      MNIST numbers (100 images, 10 steps x 3 epochs; its baselines on random initialisations).
    """
    results = [results] if isinstance(results, DistillResult) else list(results)
    if not 0 < keep <= 1 or num_sets < 1:
        raise JaxvizError(f"keep must be in (0, 1] and num_sets at least 1; got keep={keep}, num_sets={num_sets}.")
    rows = []
    for r in results:
        labels = np.asarray(r.distilled.labels)
        soft = labels.ndim == 3
        if soft:  # each slot's starting class (soft labels start as scaled one-hot logits of it)
            labels = np.asarray(jnp.argmax(initial_labels(r.config, labels.shape[-1]), -1))
        init = "fixed" if r.init_params is not None else "random"
        inits, select_inits = _inits(model, r, num_inits, key)
        train = dict(epochs=r.config.epochs, select_inits=select_inits, step_sizes=step_sizes, seed=seed)
        count = labels.size
        ev = evaluate(model, r, data.x_test, data.y_test, num_inits=num_inits, key=key)

        def row(method, acc, std, note=""):
            rows.append(dict(dataset=data.name, init=init, method=method, images=count, accuracy=float(acc), std=float(std), note=note))

        row("distilled", ev.mean, ev.std, f"{r.config.steps} steps x {r.config.epochs} epochs, {r.config.iterations} iterations"
            + (", soft labels" if soft else ""))
        real = np.stack([random_real(data, labels, seed=seed + i) for i in range(num_sets)])
        rr = train_baseline(model, real, labels, inits, data, **train)
        row("random real", rr.test_accuracies.mean(), rr.test_accuracies.std(), f"{num_sets} sets")
        best = np.argsort(-rr.train_scores, kind="stable")[:math.ceil(keep * num_sets)]
        row("optimised real", rr.test_accuracies[best].mean(), rr.test_accuracies[best].std(),
            f"best {len(best)} of {num_sets} sets by training accuracy")
        centres = kmeans_centres(data, labels, seed=seed)
        for method, imgs in (("k-means", centres), ("average real", mean_images(data, labels)),
                             ("herding", herding_images(data, labels, features=features))):
            b = train_baseline(model, imgs[None], labels, inits, data, **train)
            row(method, b.test_accuracies.mean(), b.test_accuracies.std(), f"step size {b.step_sizes[0]:g}")
        y_ref = labels.reshape(-1)
        for method, refs in (("kNN random real", real), ("kNN k-means", centres[None])):
            accs = {(k, p): np.asarray([knn_accuracy(x, y_ref, data.x_test, data.y_test, k=k, p=p) for x in refs])
                    for k in (1, 3) for p in (1, 2) if k <= count}
            (k, p), acc = max(accs.items(), key=lambda kv: kv[1].mean())
            row(method, acc.mean(), acc.std(), f"K={k}, l{p}")
    return Table1(rows, table1_markdown(rows))


def table1_markdown(rows: Sequence[Mapping]) -> str:
    """Markdown: one line per method, one column per (dataset, init, images), and the paper's MNIST column."""
    cols = list(dict.fromkeys((r["dataset"], r["init"], r["images"]) for r in rows))
    cell = {(r["method"], (r["dataset"], r["init"], r["images"])): r for r in rows}
    head = ["method", "paper MNIST (100 images; baselines random init)"] + [f"{d} {i} init, {n} images" for d, i, n in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in METHODS:
        paper = " / ".join(f"{v} ({i})" for (m, i), v in PAPER_MNIST.items() if m == method) or "-"
        vals = []
        for c in cols:
            r = cell.get((method, c))
            vals.append("-" if r is None else f"{100 * r['accuracy']:.1f}" + (f" +/- {100 * r['std']:.1f}" if r["std"] > 0 else ""))
        if any(v != "-" for v in vals):
            lines.append("| " + " | ".join([method, paper, *vals]) + " |")
    return "\n".join(lines)
