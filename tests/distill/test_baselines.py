"""Table 1 baselines, herding, k-NN, cross-architecture training and the distillation figures: known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.data import Dataset
from jaxviz.distill import (
    METHODS,
    DistillConfig,
    Distilled,
    accuracy_curve,
    cross_architecture,
    distill,
    distilled_figure,
    evaluate,
    herding,
    herding_images,
    knn_accuracy,
    mean_images,
    random_real,
    soft_label_figure,
    table1,
    train_baseline,
    train_fresh,
)
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models import Model


def linear(h=4, w=4, k=3):
    def init(key):
        return {"w": 0.1 * jax.random.normal(key, (h * w, k)), "b": jnp.zeros((k,))}

    def forward(params, x, deltas):
        return x.reshape(x.shape[0], -1) @ params["w"] + params["b"][None], {}

    return Model(init(jax.random.key(0)), forward, (), (h, w, 1), tuple("abc"[:k]), "linear", init=init)


def blobs(n=90, k=3, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, 4, 4, 1)).astype(np.float32)
    y = np.arange(n, dtype=np.int32) % k
    x = means[y] + 0.5 * rng.normal(size=(n, 4, 4, 1)).astype(np.float32)
    return Dataset("blobs", x, y, x[: n // 3], y[: n // 3], tuple("abc"[:k]), "test")


def test_mean_images_are_the_class_means_in_every_slot():
    data = blobs()
    labels = np.asarray([[0, 1, 2], [2, 0, 1]])
    x = mean_images(data, labels)
    assert x.shape == (2, 3, 4, 4, 1)
    for s in range(2):
        for i, c in enumerate(labels[s]):
            np.testing.assert_allclose(x[s, i], np.mean(data.x_train[data.y_train == c], axis=0), rtol=1e-6)


def test_knn_known_answers():
    data = blobs()
    for p in (1, 2):  # every training image is its own nearest neighbour
        assert knn_accuracy(data.x_train, data.y_train, data.x_train, data.y_train, k=1, p=p) == 1.0
    ref = np.asarray([0.0, 1.0, 2.0, 10.0, 11.0])[:, None]
    y_ref = np.asarray([0, 0, 1, 1, 1])
    q, truth = np.asarray([[0.4], [1.6], [10.5]]), np.asarray([0, 0, 1])
    assert knn_accuracy(ref, y_ref, q, np.asarray([0, 1, 1]), k=1) == 1.0  # 1.6 is nearest to 2.0, of class 1
    # K=3: 1.6's neighbours are 1 (class 0), 2 (class 1), 0 (class 0) -> 0; 0.4's are 0, 1, 2 -> 0
    assert knn_accuracy(ref, y_ref, q, truth, k=3, p=1) == 1.0
    assert knn_accuracy(ref, y_ref, q, np.asarray([1, 1, 1]), k=3) == pytest.approx(1 / 3)
    # a K=2 tie goes to the class with the nearest member: 1.6 -> 2.0 (class 1) then 1.0 (class 0)
    assert knn_accuracy(ref, y_ref, np.asarray([[1.6]]), np.asarray([1]), k=2) == 1.0
    with pytest.raises(JaxvizError, match="p must be 1"):
        knn_accuracy(ref, y_ref, q, truth, p=3)
    with pytest.raises(JaxvizError, match="between 1 and the 5"):
        knn_accuracy(ref, y_ref, q, truth, k=6)


def test_herding_picks_the_sample_nearest_the_mean_first():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(40, 5))
    order = herding(f, 40)
    assert order[0] == np.argmin(np.linalg.norm(f - f.mean(0), axis=1))
    assert sorted(order.tolist()) == list(range(40))  # all picked once
    # each greedy pick is the best next one: no other candidate brings the running mean closer
    for k in (2, 5):
        chosen = order[:k - 1]
        rest = np.setdiff1d(np.arange(40), chosen)
        errs = [np.linalg.norm(f.mean(0) - f[np.r_[chosen, i]].mean(0)) for i in rest]
        assert order[k - 1] == rest[int(np.argmin(errs))]
    with pytest.raises(JaxvizError, match="between 1 and 40"):
        herding(f, 0)
    data = blobs()
    labels = np.asarray([[0, 1, 2, 0]])
    x = herding_images(data, labels)
    for img, c in zip(x[0], labels[0]):
        match = np.flatnonzero(np.all(data.x_train == img, axis=(1, 2, 3)))
        assert match.size == 1 and data.y_train[match[0]] == c
    np.testing.assert_array_equal(herding_images(data, labels, features=data.x_train.reshape(90, -1)), x)
    with pytest.raises(ShapeError, match="one row per training image"):
        herding_images(data, labels, features=np.zeros((5, 3)))


def test_train_baseline_chooses_the_best_step_size_and_matches_protocol_a():
    model, data = linear(), blobs()
    labels = np.asarray([[0, 1, 2]])
    imgs = random_real(data, labels, seed=1)[None]
    inits = jax.tree.map(lambda a: a[None], model.params)
    grid = (0.01, 0.3, 3.0)
    b = train_baseline(model, imgs, labels, inits, data, epochs=2, step_sizes=grid, select=90)
    assert b.step_sizes[0] in grid and b.test_accuracies.shape == (1, 1)
    for s in grid:  # the chosen one is the best on the selection slice (here the whole training split)
        one = train_baseline(model, imgs, labels, inits, data, epochs=2, step_sizes=(s,), select=90)
        assert one.train_scores[0] <= b.train_scores[0] + 1e-7
    with pytest.raises(ShapeError, match=r"\(sets, steps, n, H, W, C\)"):
        train_baseline(model, imgs[0], labels, inits, data, epochs=2)
    # with a one-value grid the test accuracy is protocol (a) of that set with that step size
    d = Distilled(jnp.asarray(imgs[0]), jnp.asarray(labels), jnp.full((2,), np.log(np.expm1(0.3)), jnp.float32))
    from jaxviz.distill import DistillResult

    r = DistillResult(d, model.params, DistillConfig(epochs=2), "linear", "blobs", {}, 0.0, None, None)
    one = train_baseline(model, imgs, labels, inits, data, epochs=2, step_sizes=(0.3,), select=90)
    assert one.test_accuracies[0, 0] == pytest.approx(evaluate(model, r, data.x_test, data.y_test).mean, abs=1e-6)


def test_table1_rows_and_markdown():
    model, data = linear(), blobs()
    cfg = DistillConfig(steps=1, epochs=2, iterations=15, batch_size=60, lr=0.05, step_size_lr=0.3)
    r = distill(model, data, cfg, checkpoint=False, progress=False)
    r_rand = distill(model, data, cfg._replace(init="random", num_inits=2), checkpoint=False, progress=False)
    t = table1(model, data, [r, r_rand], num_sets=5, num_inits=3)
    got = {(row["init"], row["method"]): row for row in t.rows}
    assert set(got) == {(i, m) for i in ("fixed", "random") for m in METHODS}
    assert all(0 <= row["accuracy"] <= 1 and row["images"] == 3 for row in t.rows)
    assert got["fixed", "distilled"]["accuracy"] == pytest.approx(evaluate(model, r, data.x_test, data.y_test).mean)
    assert got["fixed", "optimised real"]["note"] == "best 1 of 5 sets by training accuracy"
    # one image per class: k-means centres are the class means, so k-NN on them is nearest-class-mean
    means = mean_images(data, np.asarray([[0, 1, 2]])).reshape(3, -1)
    diff = data.x_test.reshape(len(data.x_test), -1)[:, None] - means[None]
    nearest_mean = max(np.mean(np.abs(diff).sum(-1).argmin(1) == data.y_test), np.mean((diff**2).sum(-1).argmin(1) == data.y_test))
    assert got["fixed", "kNN k-means"]["accuracy"] == pytest.approx(nearest_mean, abs=1e-6)
    assert got["fixed", "k-means"]["accuracy"] == pytest.approx(got["fixed", "average real"]["accuracy"], abs=1e-6)
    lines = t.markdown.splitlines()
    assert "blobs fixed init, 3 images" in lines[0] and "blobs random init, 3 images" in lines[0]
    assert any(line.startswith("| kNN k-means | 92.2 (random) |") for line in lines)
    assert any(line.startswith("| distilled | 96.6 (fixed) / 79.5 +/- 8.1 (random) |") for line in lines)
    # A soft-label run: its images against the same hard-label baselines (the slots' starting classes).
    soft = distill(model, data, cfg._replace(soft_labels=True, iterations=2), checkpoint=False, progress=False)
    s = {row["method"]: row for row in table1(model, data, soft, num_sets=5, num_inits=3).rows}
    assert s["distilled"]["note"].endswith("soft labels")
    assert s["distilled"]["accuracy"] == pytest.approx(evaluate(model, soft, data.x_test, data.y_test).mean)
    assert all(s[m]["accuracy"] == pytest.approx(got["fixed", m]["accuracy"], abs=1e-6) for m in METHODS if m != "distilled")


def test_cross_architecture_lenet_and_convnet():
    from jaxviz.data import load_dataset
    from jaxviz.models import convnet, lenet

    data = load_dataset("mnist5k")
    labels = np.tile(np.arange(10), (1, 3))  # 30 real images, 3 per class
    a, b = random_real(data, labels, seed=0), random_real(data, labels, seed=1)
    targets = jax.nn.one_hot(labels, 10)
    models = {"lenet": lenet(), "convnet": convnet((28, 28, 1), width=8)}
    x_test, y_test = data.x_test[:200], data.y_test[:200]
    rows = cross_architecture({"lenet": (a, targets), "convnet": (b, targets)}, models, x_test, y_test, epochs=10, lr=0.03, num_inits=1)
    assert [(r.source, r.target) for r in rows] == [("lenet", "lenet"), ("lenet", "convnet"), ("convnet", "lenet"), ("convnet", "convnet")]
    assert all(r.mean > 0.3 for r in rows), rows  # chance is 0.1
    same = train_fresh(models["convnet"], b, targets, x_test, y_test, epochs=10, lr=0.03, num_inits=1)
    assert rows[3].mean == pytest.approx(same.mean, abs=1e-6)


def test_figures():
    model, data = linear(), blobs()
    d = Distilled(jnp.asarray(random_real(data, np.asarray([[0, 1, 2], [2, 1, 0]]))), jnp.asarray([[0, 1, 2], [2, 1, 0]]),
                  jnp.log(jnp.expm1(jnp.asarray([0.1, 0.2, 0.3, 0.4]))))
    from jaxviz.distill import DistillResult

    r = DistillResult(d, model.params, DistillConfig(steps=2, epochs=2), "linear", "blobs", {}, 0.0, None, None)
    two = distilled_figure(r, data.class_names)
    one = distilled_figure(r._replace(distilled=Distilled(d.x[:1], d.labels[:1], d.raw_lrs[::2])), data.class_names)
    assert two.dtype == np.uint8 and two.ndim == 3 and two.shape[0] > 1.5 * one.shape[0]  # one row per step
    with pytest.raises(JaxvizError, match="soft-label run"):
        soft_label_figure(r, data.class_names)
    soft = r._replace(distilled=d._replace(labels=jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 3)), jnp.float32)))
    img = soft_label_figure(soft, data.class_names)
    assert img.dtype == np.uint8 and img.shape[-1] == 3 and img.std() > 10
    curve = accuracy_curve([dict(images=1, accuracy=0.5), dict(images=10, accuracy=0.9, std=0.01),
                            dict(images=10, accuracy=0.7, method="random real")])
    assert curve.dtype == np.uint8 and curve.std() > 10
    with pytest.raises(JaxvizError, match="at least one run"):
        accuracy_curve([])


def test_tour_study_records_table1(tmp_path):
    from jaxviz.tour.distill import study
    from jaxviz.viz import Report

    model, data = linear(), blobs()
    cfg = DistillConfig(steps=1, epochs=2, iterations=4, batch_size=60, lr=0.05)
    report = Report(tmp_path / "o", "t")
    summary = study(report, tmp_path / "o", model, data, cfg, cache=tmp_path / "c", progress=False, table=dict(num_sets=2, num_inits=2))
    assert [r["baseline"] for r in summary["runs"]] == [False, True]
    assert [r["method"] for r in summary["table"]["rows"]] == list(METHODS)
    assert summary["table"]["rows"][0]["accuracy"] == pytest.approx(summary["runs"][0]["test_accuracy"])
    html = report.write().read_text()
    assert "kNN k-means | 92.2 (random)" in html and "distilled-linear-blobs" in html
    soft = study(report, tmp_path / "o", model, data, cfg._replace(soft_labels=True), cache=tmp_path / "c", progress=False,
                 table=dict(num_sets=2))
    assert soft["table"]["rows"][0]["note"].endswith("soft labels") and len(soft["runs"]) == 1 and "soft-labels-linear-blobs" in report.write().read_text()


def test_over_networks_loops_on_cpu_and_vmaps_elsewhere(monkeypatch):
    from jaxviz.distill import over_networks
    from jaxviz.models import lenet

    model = lenet(key=jax.random.key(0))
    params = jax.vmap(model.init)(jax.random.split(jax.random.key(1), 3))
    x = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1))
    looped = over_networks(model.apply, params, x)
    np.testing.assert_allclose(looped, jax.vmap(model.apply, in_axes=(0, None))(params, x), rtol=1e-5, atol=1e-5)
    assert looped.shape == (3, 4, 10)
    assert "scan" in str(jax.make_jaxpr(lambda p: over_networks(model.apply, p, x))(params))  # a loop over the networks
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert "scan" not in str(jax.make_jaxpr(lambda p: over_networks(model.apply, p, x))(params))  # one vmapped pass
