"""Kim's text CNN: shapes, the windowed linear map equals a convolution, max-over-time pooling does not
care where a sentence sits among zero rows, and initialisations can be sampled with vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.errors import ShapeError
from jaxviz.models import textcnn


@pytest.fixture(scope="module")
def model():
    return textcnn((32, 50, 1), class_names=("rotten", "fresh"), key=jax.random.key(1))


def test_shapes_and_layers(model):
    x = jax.random.normal(jax.random.key(0), (3, 32, 50, 1))
    assert model(x).shape == (3, 2) and model.num_classes == 2
    assert model.layer_shapes(x) == {"conv3": (3, 30, 50), "conv4": (3, 29, 50), "conv5": (3, 28, 50), "pool": (3, 150), "logits": (3, 2)}


def test_windows_are_a_convolution_over_the_sequence(model):
    """Each width's layer equals XLA's (w, 50) VALID convolution over the (32, 50, 1) matrix, with ReLU."""
    x = jax.random.normal(jax.random.key(0), (2, 32, 50, 1))
    acts = model.activations(x, ["conv3", "conv5"])
    for i, w in ((0, 3), (2, 5)):
        kernel = model.params["convs"][i]["kernel"][...].reshape(w, 50, 1, -1)
        bias = model.params["convs"][i]["bias"][...]
        conv = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        np.testing.assert_allclose(acts[f"conv{w}"], jax.nn.relu(conv[:, :, 0] + bias[None, None]), atol=1e-4)


def test_max_over_time_is_position_invariant(model):
    """A 10-token sentence with zero rows on both sides gives the same logits wherever it sits."""
    sentence = jax.random.normal(jax.random.key(2), (10, 50))
    placed = [jnp.zeros((32, 50)).at[s : s + 10].set(sentence) for s in (5, 9, 17)]
    x = jnp.stack(placed)[..., None]
    logits = model(x)
    np.testing.assert_allclose(logits[1:], jnp.broadcast_to(logits[0], (2, 2)), atol=1e-5)
    reversed_ = jnp.zeros((32, 50)).at[5:15].set(sentence[::-1])[None, ..., None]  # the order of the words matters
    assert np.abs(model(reversed_)[0] - logits[0]).max() > 1e-3


def test_init_samples_distinct_networks(model):
    inits = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 3))
    kernels = inits["convs"][0]["kernel"][...]
    assert kernels.shape == (3, 150, 50)
    assert np.abs(kernels[0] - kernels[1]).min() > 0
    np.testing.assert_allclose(kernels.std(), 1 / np.sqrt(150), rtol=0.1)  # LeCun normal over a window of 3 x 50


def test_bad_shapes():
    with pytest.raises(ShapeError, match="length >= the widest"):
        textcnn((4, 50, 1))
    with pytest.raises(ShapeError, match=r"\(length, embedding_dim, 1\)"):
        textcnn((32, 50, 3))
    with pytest.raises(ShapeError, match="expects inputs|channel"):
        textcnn((32, 50, 1))(jnp.zeros((1, 32, 50, 2)))
