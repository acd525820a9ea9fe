"""Trainable parameters apart from state, training mode, init for every adapter and zoo model,
headless extractors and probes that stop early."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import jaxviz.attribution as A
from jaxviz.errors import HeadlessModelError, ShapeError, TargetError
from jaxviz.models import convnet, from_linen, from_nnx, lenet, squeezenet, vgg16
from jaxviz.train import predict

X = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))


class BatchNormNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.fc = nnx.Linear(4 * 8 * 8, 3, rngs=rngs)

    def __call__(self, x):
        h = self.drop(jax.nn.relu(self.bn(self.conv(x))))
        return self.fc(h.reshape(x.shape[0], -1))


class BatchNormLinen(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn")(nn.Conv(4, (3, 3), name="conv")(x)))
        return nn.Dense(3, name="out")(h.reshape(x.shape[0], -1))


def test_nnx_batch_norm_state_is_not_a_parameter_and_training_mode_updates_it():
    module = BatchNormNet(nnx.Rngs(0))
    model = from_nnx(module, (8, 8, 1))
    param_paths = {path for path, _ in nnx.to_flat_state(model.params)}
    assert ("bn", "mean") not in param_paths and ("bn", "scale") in param_paths
    assert ("bn", "mean") in {path for path, _ in nnx.to_flat_state(model.state)}
    # grads and optimisers see only the trainable parameters
    grads = jax.grad(lambda p: model.apply(p, X).sum())(model.params)
    assert jax.tree.structure(grads) == jax.tree.structure(model.params)
    # evaluation mode: running averages, no dropout (deterministic, equals the module in eval mode)
    module.eval()
    np.testing.assert_allclose(model(X), module(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(X), model(X))
    # training mode: batch statistics move, dropout follows the key
    out1, state1 = model.apply_train(model.params, X, key=jax.random.key(1))
    out2, _ = model.apply_train(model.params, X, key=jax.random.key(1))
    out3, _ = model.apply_train(model.params, X, key=jax.random.key(2))
    np.testing.assert_array_equal(out1, out2)
    assert not np.allclose(out1, out3)
    before, after = (dict(nnx.to_flat_state(s))[("bn", "mean")].get_value() for s in (model.state, state1))
    assert not np.allclose(after, before)
    trained = model.replace(state=state1)
    assert not np.allclose(trained(X), model(X))  # evaluation now uses the updated statistics


def test_linen_params_apart_from_batch_stats_with_train_kwargs():
    module = BatchNormLinen()
    variables = module.init(jax.random.key(0), X)
    model = from_linen(module, variables, (8, 8, 1), train_kwargs={"train": True})
    assert set(model.params) == {"conv", "bn", "out"} and set(model.state) == {"batch_stats"}
    np.testing.assert_allclose(model(X), module.apply(variables, X), rtol=1e-5)
    _, state = model.apply_train(model.params, X)
    assert not np.allclose(state["batch_stats"]["bn"]["mean"], variables["batch_stats"]["bn"]["mean"])
    fresh = model.init(jax.random.key(3))
    assert jax.tree.structure(fresh) == jax.tree.structure(model.params)


def _unrolled_sgd_grad(model, x, y, inits, steps=3, lr=0.1):
    """d(final loss)/d(x) through a lax.scan of SGD steps, vmapped over initialisations."""

    def final_loss(data, params):
        def sgd(p, _):
            g = jax.grad(lambda q: jnp.mean((model.apply(q, data) - y) ** 2))(p)
            return jax.tree.map(lambda a, b: a - lr * b, p, g), None

        p, _ = jax.lax.scan(sgd, params, None, length=steps)
        return jnp.mean((model.apply(p, data) - y) ** 2)

    return jax.grad(lambda d: jax.vmap(final_loss, in_axes=(None, 0))(d, inits).mean())(x)


class SmallNNX(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.fc = nnx.Linear(4 * 8 * 8, 3, rngs=rngs)

    def __call__(self, x):
        return self.fc(jax.nn.relu(self.conv(x)).reshape(x.shape[0], -1))


class SmallLinen(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Conv(4, (3, 3))(x)).reshape(x.shape[0], -1))


ADAPTERS = {
    "nnx-own-initialisers": lambda: from_nnx(SmallNNX(nnx.Rngs(0)), (8, 8, 1)),
    "nnx-build": lambda: from_nnx(SmallNNX(nnx.Rngs(0)), (8, 8, 1), build=lambda k: SmallNNX(nnx.Rngs(k))),
    "linen": lambda: from_linen(SmallLinen(), SmallLinen().init(jax.random.key(0), X), (8, 8, 1)),
}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapters_vmap_init_and_differentiate_unrolled_sgd(name):
    model = ADAPTERS[name]()
    inits = jax.vmap(model.init)(jax.random.split(jax.random.key(1), 3))
    leaves = jax.tree.leaves(inits)
    assert all(a.shape[0] == 3 for a in leaves)
    assert any(not np.allclose(a[0], a[1]) for a in leaves)  # distinct initialisations
    assert jax.tree.structure(jax.tree.map(lambda a: a[0], inits)) == jax.tree.structure(model.params)
    g = _unrolled_sgd_grad(model, X, jnp.zeros((4, 3)), inits)
    assert g.shape == X.shape and np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_zoo_models_vmap_init_and_differentiate_unrolled_sgd():
    # traced (shapes, differentiability), not compiled, to keep the suite fast; the adapter test above
    # compiles and runs the same unrolled gradient on small nets
    for model, size in ((lenet(), 28), (convnet((32, 32, 3), width=16), 32), (squeezenet(), 64), (vgg16(), 32)):
        x = jax.ShapeDtypeStruct((2, size, size, model.input_shape[-1]), jnp.float32)
        inits = jax.eval_shape(jax.vmap(model.init), jax.random.split(jax.random.key(1), 2))
        assert jax.tree.structure(inits) == jax.tree.structure(model.params)
        assert all(a.shape == (2, *p.shape) for a, p in zip(jax.tree.leaves(inits), jax.tree.leaves(model.params)))
        n = {"lenet": 10, "convnet": 10, "squeezenet": 1000, "vgg16": 512}[model.name]
        g = jax.eval_shape(lambda xx, p: _unrolled_sgd_grad(model, xx, jnp.zeros((2, n)), p, steps=2), x, inits)
        assert g.shape == x.shape, model.name


def test_headless_vgg_is_a_feature_extractor_with_clear_errors():
    model = vgg16()  # random weights, no top: the same contract as load_hed_vgg16()
    assert not model.head and model.num_classes is None
    x = jax.random.uniform(jax.random.key(0), (1, 32, 32, 3))
    with pytest.raises(HeadlessModelError, match="vgg16 is a feature extractor.*activations"):
        A.gradient(model, x, 0)
    with pytest.raises(HeadlessModelError):
        A.grad_cam(model, x, 0, layer="block5_conv3")
    with pytest.raises(HeadlessModelError):
        predict(model, np.zeros((1, 32, 32, 3), np.float32))
    acts = model.activations(x, ["block2_conv1", "block1_conv2"])
    assert set(acts) == {"block1_conv2", "block2_conv1"} and acts["block2_conv1"].shape == (1, 16, 16, 128)


def test_probe_until_stops_after_the_layer():
    model = lenet()
    x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
    logits, acts = model.probe(x, until="pool1")
    assert logits is None and list(acts) == ["conv1", "pool1"]
    full_logits, full = model.probe(x)
    np.testing.assert_allclose(acts["pool1"], full["pool1"])
    # the stopped pass really does less work: none of the three fully connected layers in its program
    stopped = str(jax.make_jaxpr(lambda xx: model.activations(xx, ["conv1"]))(x)).count("dot_general")
    assert str(jax.make_jaxpr(model)(x)).count("dot_general") == stopped + 3
    # gradients through a stopped probe (layer objectives) are gradients of the full one
    g_stop = jax.grad(lambda xx: model.activations(xx, ["conv2"])["conv2"].sum())(x)
    g_full = jax.grad(lambda xx: model.probe(xx)[1]["conv2"].sum())(x)
    np.testing.assert_allclose(g_stop, g_full, rtol=1e-5)


def test_pixel_dtypes():
    model = lenet()
    u8 = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(1, 28, 28, 1)
    np.testing.assert_allclose(model(u8), model(u8.astype(np.float32) / 255), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(A.gradient(model, u8, 3), A.gradient(model, u8 / np.float32(255), 3), rtol=1e-5)
    with pytest.raises(ShapeError, match="integer pixels of dtype int64.*uint8"):
        model(u8.astype(np.int64))
    with jax.enable_x64(True):
        x64 = np.asarray(u8, np.float64) / 255
        g = A.gradient(lambda x: jnp.concatenate([jnp.tanh(x).sum((1, 2)), 2 * jnp.tanh(x).sum((1, 2))], axis=1), x64, 1)
        assert g.dtype == jnp.float64
        np.testing.assert_allclose(g[..., 0], 2 * (1 - np.tanh(x64[..., 0]) ** 2), rtol=1e-12)


def test_targets_must_be_integers_for_models_and_functions():
    model = lenet()
    x = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(TargetError, match="integer class indices; got float64"):
        A.gradient(model, x, 2.7)
    with pytest.raises(TargetError, match="integer class indices"):
        A.gradient(lambda v: v.sum((1, 2)), x, 2.7)
    # NumPy integer settings are static settings, not traced values
    ig = A.integrated_gradients(model, x + 0.5, np.int64(3), steps=np.int64(4), chunk_size=np.int64(2))
    assert ig.shape == x.shape


def test_predict_compiles_once_for_repeated_calls():
    from jaxviz.train.trainer import _predicted_classes

    model = lenet()
    x = np.random.default_rng(0).random((10, 28, 28, 1), np.float32)
    first = predict(model, x, batch_size=4)
    size = _predicted_classes._cache_size()
    second = predict(model, x[::-1].copy(), batch_size=4)
    assert _predicted_classes._cache_size() == size  # same shapes: no new program
    np.testing.assert_array_equal(second, first[::-1])
