"""Distribution matching (Zhao & Bilen 2023): the loss against a hand computation, DSA's transforms,
gradients, resume, bad input, and a short run of a tiny ConvNet on Fashion-MNIST."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxviz.data import Dataset
from jaxviz.distill import (
    MatchConfig,
    distribution_matching,
    dm_loss,
    dsa_augment,
    dsa_params,
    embedding_layer,
    make_match_step,
    random_real,
    save_artifact,
)
from jaxviz.distill.matching import by_class, initial_match
from jaxviz.errors import HeadlessModelError, JaxvizError, ShapeError, UnknownLayerError
from jaxviz.models import Model, convnet
from jaxviz.models.contract import Taps


def toy(h=4, w=4, k=3, dtype=jnp.float32):
    """Embedding ``tanh(a * x)`` per pixel (layer "feat"), then a linear head; ``init`` samples ``a`` and the head."""

    def init(key):
        ka, kw = jax.random.split(key)
        return {"a": 1.0 + 0.5 * jax.random.normal(ka, (h, w, 1), dtype), "w": 0.1 * jax.random.normal(kw, (h * w, k), dtype)}

    def forward(params, x, deltas):
        taps = Taps(deltas)
        f = taps("feat", jnp.tanh(params["a"][None] * x))
        return taps("logits", f.reshape(f.shape[0], -1) @ params["w"]), taps.acts

    return Model(init(jax.random.key(0)), forward, ("feat", "logits"), (h, w, 1), tuple("abc"[:k]), "toy", init=init)


def blobs(n=90, k=3, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(size=(k, 4, 4, 1)).astype(np.float32)
    y = np.arange(n, dtype=np.int32) % k
    x = means[y] + 0.2 * rng.normal(size=(n, 4, 4, 1)).astype(np.float32)
    return Dataset("blobs", x, y, x[: n // 3], y[: n // 3], tuple("abc"[:k]), "test")


def test_loss_is_zero_on_the_real_batch_and_matches_a_hand_computation():
    model, rng = toy(), np.random.default_rng(0)
    xr = rng.uniform(size=(3, 5, 4, 4, 1)).astype(np.float32)
    xs = rng.uniform(size=(3, 2, 4, 4, 1)).astype(np.float32)
    p = model.init(jax.random.key(3))
    assert float(dm_loss(model, p, xr, xr, "feat")) == 0.0
    a = np.asarray(p["a"])
    real = np.tanh(a * xr).reshape(3, 5, -1).mean(1)
    syn = np.tanh(a * xs).reshape(3, 2, -1).mean(1)
    np.testing.assert_allclose(dm_loss(model, p, xr, xs, "feat"), np.sum((real - syn) ** 2), rtol=1e-5)
    # only class means matter: reordering the synthetic images within a class changes nothing
    np.testing.assert_allclose(dm_loss(model, p, xr, xs[:, ::-1], "feat"), dm_loss(model, p, xr, xs, "feat"), rtol=1e-6)


def test_augment_known_transforms():
    x = jax.random.uniform(jax.random.key(0), (2, 6, 5, 1))
    np.testing.assert_allclose(dsa_augment(x, jnp.asarray([[1.0, 0, 0], [0, 1, 0]])), x, atol=1e-6)
    np.testing.assert_allclose(dsa_augment(x, jnp.asarray([[-1.0, 0, 0], [0, 1, 0]])), x[:, :, ::-1], atol=1e-6)
    # reading one pixel to the right (2/w in [-1, 1] units) shifts left and fills zeros at the edge
    shifted = dsa_augment(x, jnp.asarray([[1.0, 0, 2 / 5], [0, 1, 0]]))
    np.testing.assert_allclose(shifted[:, :, :-1], x[:, :, 1:], atol=1e-6)
    np.testing.assert_allclose(shifted[:, :, -1], 0.0)
    maps = dsa_params(jax.random.key(1), 200)
    det = np.abs(np.linalg.det(np.asarray(maps[:, :, :2])))  # |det| = sx * sy within [1/1.44, 1.44]
    assert maps.shape == (200, 2, 3) and det.min() >= 1 / 1.44 - 1e-5 and det.max() <= 1.44 + 1e-5
    assert np.abs(np.asarray(maps[:, :, 2])).max() <= 0.25 and 0.3 < np.mean(np.linalg.det(np.asarray(maps[:, :, :2])) < 0) < 0.7


def test_gradient_to_the_images_matches_finite_differences():
    with jax.enable_x64(True):
        model = toy(dtype=jnp.float64)
        rng = np.random.default_rng(1)
        xr = jnp.asarray(rng.uniform(size=(3, 4, 4, 4, 1)))
        x0 = jnp.asarray(rng.uniform(size=(6, 4, 4, 1)))  # 2 per class, class j % 3 at j
        p = model.init(jax.random.key(2))
        affines = dsa_params(jax.random.key(4), 3).astype(jnp.float64)

        def loss(x):
            syn = jax.vmap(dsa_augment)(by_class(x, 3), affines)
            return dm_loss(model, p, jax.vmap(dsa_augment)(xr, affines), syn, "feat")

        g = jax.grad(loss)(x0)
        assert np.all(np.abs(np.asarray(g)).reshape(6, -1).max(1) > 0)  # every image gets a gradient
        for _ in range(3):
            d = jnp.asarray(rng.normal(size=x0.shape))
            eps = 1e-6
            fd = (loss(x0 + eps * d) - loss(x0 - eps * d)) / (2 * eps)
            np.testing.assert_allclose(jnp.vdot(g, d), fd, rtol=1e-6)


def test_several_networks_are_vmapped_and_averaged():
    model, data = toy(), blobs()
    cfg = MatchConfig(images_per_class=2, real_per_class=5, nets=3, augment=False, optimizer="sgd", lr=0.0)
    opt = optax.sgd(0.0)
    x0 = initial_match(cfg, data, 3)[0][0]
    xr = jnp.asarray(data.x_train[:15]).reshape(5, 3, 4, 4, 1).swapaxes(0, 1)  # (classes, 5, ...)
    _, m = jax.jit(make_match_step(model, cfg, opt, 3, "feat"))((x0, opt.init(x0)), (xr, np.int32(7)))
    keys = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed + 1), 7), 3)
    losses = [dm_loss(model, model.init(k), xr, by_class(x0, 3), "feat") for k in keys]
    np.testing.assert_allclose(m["loss"], np.mean(losses), rtol=1e-5)
    assert np.ptp(losses) > 1e-4  # the networks really differ


def test_starts_from_random_real_images_and_resumes_identically(tmp_path):
    model, data = toy(), blobs()
    cfg = MatchConfig(images_per_class=2, iterations=10, real_per_class=8, lr=0.05)
    x0, labels = initial_match(cfg, data, 3)
    assert labels.tolist() == [[0, 1, 2, 0, 1, 2]]
    np.testing.assert_array_equal(x0, random_real(data, np.asarray(labels), seed=cfg.seed))
    straight = distribution_matching(model, data, cfg, cache=tmp_path / "a", progress=False)
    assert not np.array_equal(straight.distilled.x, x0)
    first = distribution_matching(model, data, cfg, cache=tmp_path / "b", progress=False, stop_after_steps=4)
    second = distribution_matching(model, data, cfg, cache=tmp_path / "b", progress=False)
    assert first.history["loss"].shape == (4,) and second.resumed_from == 4 and second.history["loss"].shape == (10,)
    np.testing.assert_array_equal(second.distilled.x, straight.distilled.x)
    np.testing.assert_array_equal(second.history["loss"], straight.history["loss"])
    z = np.load(save_artifact(tmp_path / "dm.npz", straight))  # a distilled set like any other, without step sizes
    assert z["x"].shape == (1, 6, 4, 4, 1) and z["y"].tolist() == [[0, 1, 2, 0, 1, 2]] and z["lrs"].shape == (0,)


def test_a_few_iterations_on_fashion_mnist_lower_the_loss_under_unseen_networks():
    from jaxviz.data import load_dataset

    data = load_dataset("fashion_mnist")
    model = convnet((28, 28, 1), class_names=data.class_names, width=8)
    assert embedding_layer(model) == "block3"
    cfg = MatchConfig(images_per_class=1, iterations=8, real_per_class=8)
    r = distribution_matching(model, data, cfg, checkpoint=False, progress=False)
    y = np.asarray(data.y_train)
    xr = jnp.asarray(data.x_train[np.stack([np.flatnonzero(y == c)[-32:] for c in range(10)])])  # a fixed real batch
    nets = jax.vmap(model.init)(jax.random.split(jax.random.key(999), 2))  # networks the run never saw
    held_out = jax.jit(lambda xs, xreal: jax.vmap(lambda p: dm_loss(model, p, xreal, xs, "block3"))(nets).mean())
    swapped = float(held_out(xr[::-1], xr))  # the classes swapped: no match
    assert swapped > 0.0 and float(held_out(xr, xr)) <= 1e-9 * swapped  # the real batch matches itself (up to rounding)
    before = float(held_out(by_class(initial_match(cfg, data, 10)[0][0], 10), xr))
    after = float(held_out(by_class(r.distilled.x[0], 10), xr))
    assert after < 0.9 * before, (before, after)  # 33.2 -> 27.4 in 8 iterations


@pytest.mark.parametrize("change, error, match", [
    (dict(images_per_class=0), JaxvizError, "images_per_class must be an integer of at least 1"),
    (dict(real_per_class=0), JaxvizError, "real_per_class must be"),
    (dict(optimizer="lbfgs"), JaxvizError, "unknown optimizer"),
    (dict(init="kmeans"), JaxvizError, "unknown init"),
    (dict(momentum=1.0), JaxvizError, "momentum must be in"),
    (dict(real_per_class=31), ShapeError, "only 30 training images of its smallest class"),
    (dict(layer="conv9"), UnknownLayerError, "no layer 'conv9'"),
])
def test_bad_config(change, error, match):
    with pytest.raises(error, match=match):
        distribution_matching(toy(), blobs(), MatchConfig(**change), checkpoint=False, progress=False)


def test_bad_model_or_data():
    data = blobs()
    with pytest.raises(ShapeError, match="has no init function"):
        distribution_matching(toy().replace(init=None), data, checkpoint=False, progress=False)
    with pytest.raises(HeadlessModelError):
        distribution_matching(toy().replace(head=False), data, checkpoint=False, progress=False)
    only_two = data._replace(x_train=data.x_train[data.y_train < 2], y_train=data.y_train[data.y_train < 2])
    with pytest.raises(JaxvizError, match=r"no training example of class\(es\) \[2\]"):
        distribution_matching(toy(), only_two, MatchConfig(real_per_class=4), checkpoint=False, progress=False)
    with pytest.raises(ShapeError, match="expects inputs"):
        distribution_matching(toy(5, 5), data, checkpoint=False, progress=False)


def test_cli_method_dm(tmp_path, capsys):
    import json

    from jaxviz.cli.main import main

    assert main(["distill", "--method", "dm", "--images-per-class", "0", "--cache-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxviz distill: error: images_per_class must be an integer of at least 1") and "Traceback" not in err
    out = tmp_path / "o"
    code = main(["distill", "--method", "dm", "--dataset", "mnist5k", "--iterations", "2", "--real-per-class", "4", "--fresh-epochs", "2",
                 "--fresh-inits", "1", "--out", str(out), "--cache-dir", str(tmp_path), "--no-progress"])
    runs = json.loads((out / "distill.json").read_text())["runs"]
    assert code == 0 and [r["baseline"] for r in runs] == [False, True] and (out / "index.html").is_file()
    dm, real = (np.load(out / r["artifact"]) for r in runs)
    assert dm["x"].shape == real["x"].shape == (1, 10, 28, 28, 1) and dm["y"].tolist() == [list(range(10))]
    assert not np.array_equal(dm["x"], real["x"])  # two SGD steps moved the images away from the real ones they started from
