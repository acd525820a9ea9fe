"""Feature extractors: average pooling by rewriting, layer checks, size checks, random weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.errors import JaxvizError, ShapeError, UnknownLayerError
from jaxviz.models import Model
from jaxviz.models.squeezenet import max_pool_ceil
from jaxviz.style import average_pooling, check_image_size, extractor, random_weights


def test_average_pooling_replaces_max_pooling_with_padding_excluded():
    x = jnp.arange(36.0).reshape(1, 6, 6, 1)
    out = average_pooling(lambda x: max_pool_ceil(x, 3, 2))(x)  # Caffe ceil mode: 3x3 output, last windows overhang
    a = np.arange(36.0).reshape(6, 6)
    expect = np.array([[a[r:r + 3, c:c + 3].mean() for c in (0, 2, 4)] for r in (0, 2, 4)])
    np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], expect, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(max_pool_ceil(x, 3, 2))[0, 0, 0, 0], 14.0)  # the original is untouched


def test_average_pooling_gradient_is_the_average_pools():
    f = lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID").sum()
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(average_pooling(f)))(x)), np.full(x.shape, 0.25), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(average_pooling(f))(x)), float(x.reshape(2, 2, 2, 2, 2, 3).mean((2, 4)).sum()), rtol=1e-5)


def test_extractor_with_average_pooling(tiny):
    x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
    acts = jax.jit(extractor(tiny, ["conv1", "pool1"], pooling="avg"))(x)
    c1 = np.asarray(acts["conv1"])
    np.testing.assert_allclose(np.asarray(acts["pool1"]), c1.reshape(2, 4, 2, 4, 2, 8).mean((2, 4)), rtol=1e-5, atol=1e-6)
    maxed = jax.jit(extractor(tiny, ["pool1"]))(x)["pool1"]
    np.testing.assert_allclose(np.asarray(maxed), c1.reshape(2, 4, 2, 4, 2, 8).max((2, 4)), rtol=1e-6)


def test_average_pooling_on_squeezenet_layers(squeezenet_model):
    x = jax.random.uniform(jax.random.key(2), (1, 35, 35, 3))
    acts = jax.jit(extractor(squeezenet_model, ["conv1", "pool1"], pooling="avg"))(x)
    expect = jax.jit(average_pooling(lambda h: max_pool_ceil(h)))(acts["conv1"])
    np.testing.assert_allclose(np.asarray(acts["pool1"]), np.asarray(expect), rtol=1e-5, atol=1e-4)


def test_layer_errors(tiny):
    with pytest.raises(JaxvizError, match="non-empty list"):
        extractor(tiny, [])
    with pytest.raises(UnknownLayerError, match="valid layers: conv1, pool1"):
        extractor(tiny, ["conv9"])
    with pytest.raises(JaxvizError, match="pooling"):
        extractor(tiny, ["conv1"], pooling="min")


def test_image_too_small_and_wrong_channels(squeezenet_model):
    ext = extractor(squeezenet_model, ["conv1", "fire8"])
    assert check_image_size(ext, (1, 32, 32, 3))["fire8"][1:3] == (1, 1)
    with pytest.raises(ShapeError, match=r"too small .* at least 17x17"):
        check_image_size(ext, (1, 12, 12, 3))
    with pytest.raises(ShapeError, match="to_rgb"):
        check_image_size(ext, (1, 32, 32, 1))


def test_random_weights_keep_the_architecture(squeezenet_model):
    r1, r2 = random_weights(squeezenet_model, jax.random.key(0)), random_weights(squeezenet_model, jax.random.key(0))
    k = np.asarray(r1.params["fires"]["fire9"]["expand3x3"]["kernel"][...])
    k0 = np.asarray(squeezenet_model.params["fires"]["fire9"]["expand3x3"]["kernel"][...])
    assert k.shape == k0.shape and not np.allclose(k, k0)
    np.testing.assert_allclose(k.std(), np.sqrt(2 / (9 * 64)), rtol=0.05)  # He init, fan-in 3x3x64
    np.testing.assert_array_equal(k, np.asarray(r2.params["fires"]["fire9"]["expand3x3"]["kernel"][...]))
    assert not np.any(np.asarray(r1.params["conv1"]["bias"][...]))
    assert jax.tree.structure(r1.params) == jax.tree.structure(squeezenet_model.params)


def test_default_layers_exist_in_every_zoo_extractor(squeezenet_model):
    from jaxviz.models import load_hed_vgg16, vgg19
    from jaxviz.style import content_layer, doodle_layers, style_layers, texture_layers

    for model in (squeezenet_model, load_hed_vgg16(), vgg19(key=jax.random.key(0))):
        for layers in (texture_layers(model), style_layers(model), doodle_layers(model), (content_layer(model),)):
            assert model.check_layers(layers) == tuple(layers)
    assert texture_layers(vgg19(key=jax.random.key(0)))[1:] == ("block1_pool", "block2_pool", "block3_pool", "block4_pool")
    with pytest.raises(JaxvizError, match="no default texture layers for model 'tiny'; pass layers="):
        texture_layers(Model({}, lambda p, x, d: (x, {}), ("features",), None, None, "tiny"))
