import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

from jaxviz.errors import UnknownLayerError
from jaxviz.models import from_function, from_functions, from_linen, from_nnx


class SmallNNX(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(4 * 8 * 8, 16, rngs=rngs), nnx.Linear(16, 3, rngs=rngs)])

    def __call__(self, x):
        h = jax.nn.relu(self.conv(x)).reshape(x.shape[0], -1)
        return self.blocks[1](jax.nn.relu(self.blocks[0](h)))


class SmallLinen(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(4, (3, 3), name="conv")(x)).reshape(x.shape[0], -1)
        return nn.Dense(3, name="out")(nn.relu(nn.Dense(16, name="hidden")(h)))


X = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))


def test_from_nnx_matches_module_and_exposes_leaf_layers():
    module = SmallNNX(nnx.Rngs(0))
    model = from_nnx(module, (8, 8, 1))
    assert model.layers == ("conv", "blocks/0", "blocks/1")
    np.testing.assert_allclose(model(X), module(X), rtol=1e-6)
    _, acts = model.probe(X, {"blocks/0": jnp.ones((2, 16))})
    np.testing.assert_allclose(acts["blocks/0"], module.blocks[0](jax.nn.relu(module.conv(X)).reshape(2, -1)) + 1, rtol=1e-5)
    assert isinstance(module.conv, nnx.Conv)  # the user's module is left untouched
    g = jax.grad(lambda d: model.probe(X, d)[0][:, 0].sum())(model.zero_deltas(X, ["blocks/1"]))["blocks/1"]
    np.testing.assert_allclose(g, np.tile([1.0, 0, 0], (2, 1)))
    with pytest.raises(UnknownLayerError, match="no submodule 'fc'; valid: .*blocks/0"):
        from_nnx(module, (8, 8, 1), layers=["fc"])


def test_from_linen_intercepts_submodules():
    module = SmallLinen()
    variables = module.init(jax.random.key(0), X)
    model = from_linen(module, variables, (8, 8, 1))
    assert model.layers == ("conv", "hidden", "out")
    np.testing.assert_allclose(model(X), module.apply(variables, X), rtol=1e-6)
    hidden_grad = jax.grad(lambda d: model.probe(X, d)[0][:, 1].sum())(model.zero_deltas(X, ["hidden"]))["hidden"]
    w = np.asarray(variables["params"]["out"]["kernel"])[:, 1]
    active = np.asarray(model.activations(X, ["hidden"])["hidden"]) > 0  # the ReLU between hidden and out
    np.testing.assert_allclose(hidden_grad, w * active, rtol=1e-5)
    with pytest.raises(UnknownLayerError, match="'fc'"):
        from_linen(module, variables, (8, 8, 1), layers=["fc"])


def test_from_functions_and_function():
    w = jax.random.normal(jax.random.key(1), (1, 3))
    model = from_functions(lambda x: x.mean((1, 2)), lambda a: a @ w, (8, 8, 1))
    assert model.layers == ("features",)
    np.testing.assert_allclose(model(X), X.mean((1, 2)) @ w, rtol=1e-6)
    grad = jax.grad(lambda d: model.probe(X, d)[0][:, 2].sum())(model.zero_deltas(X, ["features"]))["features"]
    np.testing.assert_allclose(grad, np.broadcast_to(w[:, 2], (2, 1)), rtol=1e-6)
    plain = from_function(lambda x: x.sum((1, 2)) @ w)
    assert plain.layers == () and plain(X).shape == (2, 3)
