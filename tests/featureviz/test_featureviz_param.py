import jax
import numpy as np
import pytest

from jaxviz import featureviz as fv
from jaxviz.errors import JaxvizError, ShapeError


@pytest.mark.parametrize(
    "fourier, decorrelate, squash",
    [(False, False, "sigmoid"), (False, True, "clip"), (True, False, "clip"), (True, True, "sigmoid")],
)
def test_encode_inverts_render_at_odd_sizes(fourier, decorrelate, squash):
    p = fv.image_param((13, 18), batch=2, fourier=fourier, decorrelate=decorrelate, squash=squash)
    x = jax.random.uniform(jax.random.key(0), p.shape, minval=0.05, maxval=0.95)
    np.testing.assert_allclose(p(p.encode(x)), x, atol=2e-5)


def test_shapes_batch_and_grey():
    p = fv.image_param(9, batch=3, channels=1)
    params = p.init(jax.random.key(0))
    assert params.shape == (2, 3, 1, 9, 5)
    img = p(params)
    assert img.shape == (3, 9, 9, 1) and float(img.min()) > 0 and float(img.max()) < 1


def test_colour_matrix_is_lucids_normalised():
    m = fv.COLOUR_CORRELATION_SQRT
    assert np.isclose(np.linalg.norm(m, axis=0).max(), 1.0)
    np.testing.assert_allclose(m[:, 0] / m[0, 0], [1, 0.27 / 0.26, 0.27 / 0.26], rtol=1e-6)


def test_fourier_scaling_follows_decay_power():
    """A flat spectrum of parameters becomes an image whose amplitude at frequency f is ~ 1/f**decay."""
    p = fv.image_param(64, channels=1, decorrelate=False, decay_power=1.5)
    freqs = fv.fft_frequencies(64, 64)
    scale = p._scale
    low, high = (freqs > 0.05) & (freqs < 0.06), (freqs > 0.4) & (freqs < 0.41)
    ratio = scale[low].mean() / scale[high].mean()
    expected = (freqs[high].mean() / freqs[low].mean()) ** 1.5
    assert ratio == pytest.approx(expected, rel=0.05)


def test_fourier_blur_is_a_gaussian_of_the_given_sigma():
    """Clip squash: image = t + 0.5, so blurring the parameters of a delta gives the Gaussian itself."""
    p = fv.image_param(33, channels=1, decorrelate=False, squash="clip")
    delta = np.zeros((1, 33, 33, 1), np.float32)
    delta[0, 16, 16, 0] = 1.0
    bump = np.asarray(p(p.blur(p.encode(delta), 2.0)))[0, :, :, 0]
    y, x = np.mgrid[:33, :33]
    assert bump.sum() == pytest.approx(1.0, abs=1e-4)
    assert (bump * (y - 16) ** 2).sum() == pytest.approx(4.0, rel=0.02)
    assert (bump * (x - 16) ** 2).sum() == pytest.approx(4.0, rel=0.02)


def test_pixel_blur_keeps_a_constant_image():
    p = fv.pixel_param(12, squash="clip")
    x = np.full(p.shape, 0.3, np.float32)
    np.testing.assert_allclose(p(p.blur(p.encode(x), 1.5)), x, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ShapeError, match="channels must be 1"):
        fv.image_param(8, channels=4)
    with pytest.raises(JaxvizError, match="squash"):
        fv.image_param(8, squash="tanh")
    with pytest.raises(JaxvizError, match="height"):
        fv.image_param(0)
    with pytest.raises(ShapeError, match="encode expects"):
        fv.image_param(8).encode(np.zeros((1, 9, 9, 3)))
