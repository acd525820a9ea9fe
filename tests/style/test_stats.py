"""Known answers for the style statistics and losses."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.style import (
    content_loss,
    covariance,
    feature_means,
    gram,
    gram_distance,
    layer_style_loss,
    masked_gram,
    masked_means,
    masked_statistic,
    style_loss,
    style_statistic,
    total_variation,
)


def _f(seed=0, shape=(2, 4, 6, 3)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_gram_of_a_known_tensor():
    f = np.array([[[1, 2], [3, 4]], [[0, 1], [1, 0]]], np.float32)[None]  # (1, 2, 2, 2): positions (1,2),(3,4),(0,1),(1,0)
    g = np.asarray(gram(f))[0]
    np.testing.assert_allclose(g, np.array([[1 + 9 + 0 + 1, 2 + 12 + 0 + 0], [14, 4 + 16 + 1 + 0]]) / 4, rtol=1e-6)


def test_gram_matches_numpy_and_is_symmetric_psd():
    f = _f()
    flat = f.reshape(2, -1, 3)
    expect = np.einsum("bpi,bpj->bij", flat, flat) / flat.shape[1]
    g = np.asarray(gram(f))
    np.testing.assert_allclose(g, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, g.transpose(0, 2, 1), atol=1e-6)
    assert np.linalg.eigvalsh(g).min() > -1e-5


def test_covariance_and_means_match_numpy():
    f = _f(1)
    for b in range(2):
        flat = f[b].reshape(-1, 3)
        np.testing.assert_allclose(np.asarray(covariance(f))[b], np.cov(flat, rowvar=False, bias=True), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(feature_means(f))[b], flat.mean(0), rtol=1e-5, atol=1e-6)
    # Gram = covariance + mean mean^T
    m = np.asarray(feature_means(f))
    np.testing.assert_allclose(np.asarray(gram(f)), np.asarray(covariance(f)) + m[:, :, None] * m[:, None, :], rtol=1e-4, atol=1e-5)


def test_statistics_do_not_depend_on_position():
    f = _f(2)
    perm = np.random.default_rng(0).permutation(4 * 6)
    shuffled = f.reshape(2, 24, 3)[:, perm].reshape(f.shape)
    for s in ("gram", "covariance", "mean"):
        np.testing.assert_allclose(np.asarray(style_statistic(shuffled, s)), np.asarray(style_statistic(f, s)), rtol=1e-5, atol=1e-5)
    tiled = np.concatenate([f, f], axis=2)  # size-normalised: the same texture twice as wide
    np.testing.assert_allclose(np.asarray(gram(tiled)), np.asarray(gram(f)), rtol=1e-5)


def test_unknown_statistic_and_bad_rank():
    with pytest.raises(JaxvizError, match="gram, covariance, mean"):
        style_statistic(_f(), "third_moment")
    with pytest.raises(ShapeError, match=r"\(B, H, W, C\)"):
        gram(np.zeros((4, 4, 3)))


def test_masked_gram_of_halves_equals_gram_of_crops():
    f = _f(3, (1, 4, 6, 5))
    masks = np.zeros((1, 4, 6, 2), np.float32)
    masks[:, :, :3, 0] = 1
    masks[:, :, 3:, 1] = 1
    g = np.asarray(masked_gram(f, masks))
    np.testing.assert_allclose(g[:, 0], np.asarray(gram(f[:, :, :3])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g[:, 1], np.asarray(gram(f[:, :, 3:])), rtol=1e-5, atol=1e-6)
    c = np.asarray(masked_statistic(f, masks, "covariance"))
    np.testing.assert_allclose(c[:, 1], np.asarray(covariance(f[:, :, 3:])), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(masked_means(f, masks))[:, 0], np.asarray(feature_means(f[:, :, :3])), rtol=1e-5, atol=1e-6)
    ones = np.ones((1, 4, 6, 1), np.float32)
    np.testing.assert_allclose(np.asarray(masked_gram(f, ones))[:, 0], np.asarray(gram(f)), rtol=1e-5, atol=1e-6)


def test_masks_at_image_resolution_are_area_averaged_to_the_layer():
    f = _f(4, (1, 2, 2, 3))
    masks = np.zeros((1, 8, 8, 2), np.float32)  # left half / right half at 4x the layer's resolution
    masks[:, :, :4, 0] = 1
    masks[:, :, 4:, 1] = 1
    g = np.asarray(masked_gram(f, masks))
    np.testing.assert_allclose(g[:, 0], np.asarray(gram(f[:, :, :1])), rtol=1e-5, atol=1e-6)


def test_layer_style_loss_is_gatys_equation_4():
    rng = np.random.default_rng(5)
    f, t = rng.normal(size=(1, 3, 5, 4)).astype(np.float32), rng.normal(size=(1, 3, 5, 4)).astype(np.float32)
    n, m = 4, 15
    fg, tg = f.reshape(m, n), t.reshape(m, n)
    expect = ((fg.T @ fg - tg.T @ tg) ** 2).sum() / (4 * n**2 * m**2)
    np.testing.assert_allclose(float(layer_style_loss(gram(f), gram(t))[0]), expect, rtol=1e-4)


def test_style_loss_weights_layers():
    a, b = {"x": jnp.ones((2, 3, 3)), "y": jnp.zeros((2, 2))}, {"x": jnp.zeros((1, 3, 3)), "y": jnp.full((1, 2), 2.0)}
    np.testing.assert_allclose(np.asarray(style_loss(a, b, {"x": 2.0, "y": 0.5})), [2 * 0.25 + 0.5 * 0.25 * 4] * 2, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(style_loss(a, b)), [0.5 * 0.25 + 0.5 * 1.0] * 2, rtol=1e-6)
    with pytest.raises(JaxvizError, match="at least one layer"):
        style_loss({}, b)
    with pytest.raises(JaxvizError, match="no target statistic"):
        style_loss(a, {"x": b["x"]})


def test_content_loss_and_total_variation_known_answers():
    f = np.zeros((2, 3, 3, 2), np.float32)
    p = np.full((1, 3, 3, 2), 2.0, np.float32)
    np.testing.assert_allclose(np.asarray(content_loss(f, p)), [2.0, 2.0])
    ramp = np.broadcast_to((0.1 * np.arange(5, dtype=np.float32))[None, :, None, None], (1, 5, 4, 3))
    np.testing.assert_allclose(np.asarray(total_variation(ramp)), [0.01], rtol=1e-5)  # dy = 0.1 everywhere, dx = 0
    np.testing.assert_allclose(np.asarray(total_variation(ramp, power=1)), [0.1], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(total_variation(np.full((1, 4, 4, 3), 0.7, np.float32))), [0.0])


def test_gram_distance_is_zero_for_equal_statistics_and_scale_free():
    s = {"a": gram(_f(6)), "b": gram(_f(7))}
    np.testing.assert_allclose(np.asarray(gram_distance(s, s)), [0, 0], atol=1e-7)
    t = {"a": gram(_f(8)), "b": gram(_f(9))}
    scaled = {k: 10 * v for k, v in s.items()}
    scaled_t = {k: 10 * v for k, v in t.items()}
    np.testing.assert_allclose(np.asarray(gram_distance(scaled, scaled_t)), np.asarray(gram_distance(s, t)), rtol=1e-5)
