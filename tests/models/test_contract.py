import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.errors import ShapeError, TargetError, UnknownLayerError
from jaxviz.models import convnet, lenet


@pytest.fixture(scope="module")
def model():
    return lenet()


def test_layers_in_forward_order_with_shapes(model):
    assert model.layers == ("conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "logits")
    shapes = model.layer_shapes()
    assert shapes["conv1"] == (1, 28, 28, 6) and shapes["pool2"] == (1, 5, 5, 16) and shapes["logits"] == (1, 10)


def test_probe_adds_deltas_and_layer_gradient_is_delta_gradient(model):
    x = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
    logits, acts = model.probe(x)
    np.testing.assert_allclose(logits, model(x), rtol=1e-6)
    np.testing.assert_allclose(acts["logits"], logits, rtol=1e-6)
    delta = jnp.zeros((3, 10)).at[:, 4].set(2.0)
    shifted, _ = model.probe(x, {"logits": delta})
    np.testing.assert_allclose(shifted - logits, delta, atol=1e-5)
    # d logit_k / d fc2 computed two ways: through the delta and through fc3's weights
    grad = jax.grad(lambda d: model.probe(x, d)[0][:, 4].sum())(model.zero_deltas(x, ["fc2"]))["fc2"]
    w = np.asarray(model.params["fc3"]["kernel"][...])[:, 4]
    np.testing.assert_allclose(grad, np.broadcast_to(w, (3, 84)), rtol=1e-5)


def test_apply_with_explicit_params_and_vmapped_inits(model):
    x = jnp.ones((2, 28, 28, 1))
    params = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 4))
    out = jax.vmap(model.apply, in_axes=(0, None))(params, x)
    assert out.shape == (4, 2, 10)
    assert not np.allclose(out[0], out[1])  # different initialisations
    np.testing.assert_allclose(model.apply(model.params, x), model(x), rtol=1e-6)


def test_model_is_a_pytree_that_jits_without_recompiling(model):
    traces = []

    @jax.jit
    def f(m, x):
        traces.append(1)
        return m(x)

    x = jnp.ones((2, 28, 28, 1))
    f(model, x)
    f(model.replace(params=jax.tree.map(lambda p: p * 2, model.params)), x + 1)
    assert len(traces) == 1


def test_bad_inputs_raise_clear_errors(model):
    with pytest.raises(ShapeError, match=r"batch \(B, H, W, C\).*x\[None\]"):
        model(np.zeros((28, 28, 1)))
    with pytest.raises(ShapeError, match="expects 1 channel"):
        model(np.zeros((1, 28, 28, 3)))
    with pytest.raises(ShapeError, match="28x28"):
        model(np.zeros((1, 32, 32, 1)))
    with pytest.raises(ShapeError, match="real-valued"):
        model(np.zeros((1, 28, 28, 1), complex))
    with pytest.raises(UnknownLayerError, match="valid layers: conv1, pool1"):
        model.probe(np.zeros((1, 28, 28, 1)), {"conv9": 0.0})
    with pytest.raises(UnknownLayerError, match="no layer 'fc9'"):
        model.activations(np.zeros((1, 28, 28, 1)), ["fc9"])


def test_targets_checked(model):
    np.testing.assert_array_equal(model.check_targets(3, 2), [3, 3])
    with pytest.raises(TargetError, match="out of range.*10 classes"):
        model.check_targets([1, 10], 2)
    with pytest.raises(TargetError, match=r"shape \(3,\)"):
        model.check_targets([1, 2], 3)


def test_convnet_shapes_for_both_input_sizes():
    grey = convnet((28, 28, 1))
    rgb = convnet((32, 32, 3))
    assert grey.layer_shapes()["block3"] == (1, 3, 3, 128)
    assert rgb.layer_shapes()["block3"] == (1, 4, 4, 128)
    assert rgb(jnp.ones((2, 32, 32, 3))).shape == (2, 10)
    with pytest.raises(ShapeError, match="28x28 or 32x32"):
        convnet((64, 64, 3))


def test_instance_norm_normalises_each_channel_of_each_image():
    from flax import nnx

    from jaxviz.models.zoo import ConvNet

    net = ConvNet(3, 10, 32, width=8, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3)) * 5
    h = net.norms[0](net.convs[0](x))
    np.testing.assert_allclose(h.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(h.std(axis=(1, 2)), 1, atol=1e-3)
