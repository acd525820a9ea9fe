import jax
import numpy as np
import pytest

from jaxviz import inspect as I
from jaxviz.errors import JaxvizError, ShapeError


def test_structure_known_answers():
    smooth = np.ones((5, 5, 1, 4), np.float32)
    assert I.filter_structure(smooth) == pytest.approx(1.0, abs=1e-6)
    checker = np.where((np.arange(5)[:, None] + np.arange(5)[None]) % 2 == 0, 1.0, -1.0)
    assert I.filter_structure(checker[:, :, None, None]) == pytest.approx(-1.0, abs=1e-6)
    ramp = np.linspace(1, 2, 5)[:, None] * np.ones((1, 5))
    assert I.filter_structure(ramp[:, :, None, None]) > 0.9
    noise = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    assert abs(I.filter_structure(noise)) < 0.03


def test_trained_filters_are_more_structured_than_random(squeezenet_model, lenet_trained, lenet_untrained):
    name, k = I.first_kernel(squeezenet_model)
    random = I.kernel_of(I.random_weights(squeezenet_model, jax.random.key(0)), name)
    assert name == "conv1" and random.shape == k.shape
    assert I.filter_structure(k) > 0.15 and abs(I.filter_structure(random)) < 0.1  # 2304 neighbour pairs: noise ~0.02
    expand = "fires/fire2/expand3x3"
    assert I.filter_structure(I.kernel_of(squeezenet_model, expand)) > 0.1
    assert I.filter_structure(I.first_kernel(lenet_trained)[1]) > I.filter_structure(I.first_kernel(lenet_untrained)[1]) + 0.05


def test_filter_images_normalisation():
    k = np.random.default_rng(1).standard_normal((5, 5, 3, 8)).astype(np.float32)
    per = I.filter_images(k)
    assert per.shape == (8, 5, 5, 3)
    np.testing.assert_allclose(per.reshape(8, -1).min(1), 0, atol=1e-6)
    np.testing.assert_allclose(per.reshape(8, -1).max(1), 1, atol=1e-6)
    shared = I.filter_images(k, normalize="shared")
    np.testing.assert_allclose(shared, 0.5 + 0.5 * np.moveaxis(k, -1, 0) / np.abs(k).max(), atol=1e-6)
    deep = I.filter_images(np.random.default_rng(2).standard_normal((3, 3, 4, 2)))
    assert deep.shape == (8, 3, 3, 1)  # output-major, one grey tile per input channel


def test_kernel_paths_and_errors(squeezenet_model):
    kernels = I.conv_kernels(squeezenet_model)
    assert kernels["fires/fire2/expand3x3"].shape == (3, 3, 16, 64)
    with pytest.raises(JaxvizError, match="valid kernels: conv1"):
        I.kernel_of(squeezenet_model, "conv2")
    with pytest.raises(ShapeError, match="1x1 have no spatial structure"):
        I.filter_structure(kernels["conv10"])
    with pytest.raises(ShapeError, match=r"\(kh, kw, in, out\)"):
        I.filter_structure(np.ones((3, 3, 3)))
    with pytest.raises(JaxvizError, match="normalize"):
        I.filter_images(kernels["conv1"], normalize="global")
