"""jaxviz.viz.heatmaps: percentile normalisation, colour maps and overlays."""

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.viz import colorize, normalize, overlay


def test_normalize_unsigned_percentile_clips_to_one():
    x = np.arange(100, dtype=np.float32).reshape(10, 10)
    out = normalize(x, percentile=90)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.max() == 1.0 and out.min() == 0.0
    assert (out == 1.0).sum() >= 10  # the top tenth is clipped
    np.testing.assert_allclose(out[0, 1], 1 / np.percentile(x, 90), rtol=1e-6)  # min 0 kept at 0


def test_normalize_general_map_uses_low_and_high_percentiles():
    x = np.linspace(-3, 1, 101, dtype=np.float32).reshape(1, 101)
    out = normalize(x, percentile=100)
    np.testing.assert_allclose(out, (x + 3) / 4, atol=1e-6)


def test_normalize_signed_keeps_sign_and_zero():
    x = jnp.array([[-4.0, -1.0, 0.0, 2.0, 8.0]])
    out = normalize(x, signed=True, percentile=100)
    np.testing.assert_allclose(out, [[-0.5, -0.125, 0.0, 0.25, 1.0]])
    assert out.min() >= -1 and out.max() <= 1


def test_normalize_batch_is_per_map():
    maps = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 100.0)])[..., None]
    maps[:, 0, 0] = 0
    out = normalize(maps, percentile=100)
    assert out.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(out[:, 1, 1, 0], [1.0, 1.0])


def test_normalize_constant_map_is_zero_and_bad_input():
    assert (normalize(np.full((3, 3), -2.0)) == 0).all()
    assert (normalize(np.zeros((3, 3)), signed=True) == 0).all()
    with pytest.raises(ShapeError, match="reduce the channels"):
        normalize(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ShapeError, match="got shape"):
        normalize(np.zeros((1, 2, 3, 4, 1)))
    with pytest.raises(JaxvizError, match="percentile"):
        normalize(np.zeros((3, 3)), percentile=0)


@pytest.mark.parametrize(
    ("shape", "out"),
    [
        ((5, 6), (5, 6, 3)),
        ((5, 6, 1), (5, 6, 3)),
        ((2, 5, 6), (2, 5, 6, 3)),
        ((2, 5, 6, 1), (2, 5, 6, 3)),
    ],
)
def test_colorize_shape_and_range(shape, out):
    rgb = colorize(np.random.default_rng(0).normal(size=shape) * 3)
    assert rgb.shape == out and rgb.dtype == np.float32
    assert 0 <= rgb.min() and rgb.max() <= 1


def test_colorize_default_is_inferno():
    rgb = colorize(np.array([[0.0, 1.0]]))
    inferno = matplotlib.colormaps["inferno"]
    np.testing.assert_allclose(rgb[0], [inferno(0.0)[:3], inferno(1.0)[:3]], atol=1e-6)


def test_colorize_signed_is_diverging_and_centred():
    rgb = colorize(np.array([[-0.8, 0.0, 0.8]]), signed=True)[0]
    middle = matplotlib.colormaps["RdBu_r"](0.5)[:3]
    np.testing.assert_allclose(rgb[1], middle, atol=1e-6)
    neg, pos = rgb[0], rgb[2]
    assert pos[0] > pos[2] and neg[2] > neg[0]  # red for positive, blue for negative
    # Symmetric: +-v sit at equal distances either side of the colour map's centre.
    cmap = matplotlib.colormaps["RdBu_r"]
    np.testing.assert_allclose([neg, pos], [cmap(0.1)[:3], cmap(0.9)[:3]], atol=1e-6)
    assert neg.mean() < rgb[1].mean() and pos.mean() < rgb[1].mean()  # both stronger than zero


def test_colorize_named_cmap_and_unknown():
    np.testing.assert_allclose(colorize(np.zeros((1, 1)), "coolwarm", signed=True)[0, 0],
                               matplotlib.colormaps["coolwarm"](0.5)[:3], atol=1e-6)
    with pytest.raises(JaxvizError, match="unknown colormap 'nope'"):
        colorize(np.zeros((2, 2)), "nope")


def test_overlay_resizes_heatmap_to_image():
    img = np.random.default_rng(0).random((32, 48, 3)).astype(np.float32)
    heat = jnp.arange(12.0).reshape(3, 4, 1)
    out = overlay(img, heat, alpha=0.4)
    assert out.shape == (32, 48, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(overlay(img, heat, alpha=0.0), img, atol=1e-6)


def test_overlay_grey_image_and_signed_zero_map():
    out = overlay(np.full((8, 8), 0.5), np.zeros((8, 8)), signed=True, alpha=1.0)
    np.testing.assert_allclose(out[0, 0], matplotlib.colormaps["RdBu_r"](0.5)[:3], atol=1e-6)


def test_overlay_bad_input():
    with pytest.raises(ShapeError, match="overlay image"):
        overlay(np.zeros((1, 2, 8, 8, 3)), np.zeros((8, 8)))
    with pytest.raises(ShapeError, match="one HxW"):
        overlay(np.zeros((8, 8, 3)), np.zeros((2, 8, 8)))
    with pytest.raises(JaxvizError, match="alpha"):
        overlay(np.zeros((8, 8, 3)), np.zeros((8, 8)), alpha=2)
