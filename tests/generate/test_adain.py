"""AdaIN (Huang & Belongie 2017): known answers of the normalisation, the test-time controls, training,
resuming, architecture checks and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.data import photo, resize
from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.generate import AdainConfig, adain, adain_stylise, adain_target, content_features, load_adain, style_statistics, train_adain
from jaxviz.generate.adain import _stylise_pass, mean_std

SMALL = AdainConfig(size=32, batch_size=4, steps=40, width=16, checkpoint_every=20,
                    style_photos=("immunohistochemistry", "brick", "hubble_deep_field"))


@pytest.fixture(scope="module")
def encoder():
    from jaxviz.models import squeezenet

    return squeezenet()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """:data:`SMALL` with a folder of three content photos (48 px, PNG)."""
    from jaxviz.viz import save_png

    folder = tmp_path_factory.mktemp("contents")
    for name in ("chelsea", "astronaut", "coffee"):
        save_png(folder / f"{name}.png", resize(photo(name), 48))
    return SMALL._replace(content_folder=str(folder))


@pytest.fixture(scope="module")
def trained(config, encoder, tmp_path_factory):
    return train_adain(config, directory=tmp_path_factory.mktemp("adain"), encoder=encoder, progress=False)


@pytest.fixture(scope="module")
def images():
    return resize(photo("chelsea"), 48), resize(photo("immunohistochemistry"), 40), resize(photo("hubble_deep_field"), 36)


def test_adain_has_the_style_statistics():
    rng = np.random.default_rng(0)
    c = rng.normal(3.0, 2.0, (2, 5, 6, 4)).astype(np.float32)
    s = (rng.normal(0.0, 1.0, (1, 7, 3, 4)) * [0.5, 2.0, 3.0, 0.1] + [-1.0, 4.0, 0.0, 2.0]).astype(np.float32)
    out = np.asarray(adain(c, s, eps=0.0))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), np.broadcast_to(s.mean(axis=(1, 2)), (2, 4)), atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), np.broadcast_to(s.std(axis=(1, 2)), (2, 4)), rtol=1e-4)
    # an independent formula: standardise each channel, then scale and shift
    z = (c - c.mean(axis=(1, 2), keepdims=True)) / c.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, z * s.std(axis=(1, 2), keepdims=True) + s.mean(axis=(1, 2), keepdims=True), atol=1e-4)


def test_adain_target_alpha_and_interpolation():
    rng = np.random.default_rng(1)
    f = jnp.asarray(rng.normal(size=(3, 4, 4, 8)), jnp.float32)
    s1, s2 = (jnp.asarray(rng.normal(m, d, size=(1, 5, 5, 8)), jnp.float32) for m, d in ((1.0, 2.0), (-2.0, 0.5)))
    (m1, d1), (m2, d2) = mean_std(s1), mean_std(s2)
    means, stds = jnp.stack([m1, m2], axis=1), jnp.stack([d1, d2], axis=1)  # (1, 2, C)
    w = jnp.asarray([[0.25, 0.75]])
    # alpha = 0: the content features unchanged, whatever the styles
    np.testing.assert_array_equal(adain_target(f, means, stds, w, jnp.zeros(3)), f)
    # the weighted sum of the two AdaIN outputs (Huang sec. 7), computed independently
    expect = 0.25 * adain(f, s1) + 0.75 * adain(f, s2)
    np.testing.assert_allclose(adain_target(f, means, stds, w, jnp.ones(3)), expect, rtol=1e-5, atol=1e-5)
    # two identical styles interpolate to that style
    same = adain_target(f, jnp.stack([m1, m1], 1), jnp.stack([d1, d1], 1), w, jnp.ones(3))
    np.testing.assert_allclose(same, adain(f, s1), rtol=1e-5, atol=1e-5)
    # alpha interpolates linearly between the content and the full transfer
    half = adain_target(f, means, stds, w, jnp.full(3, 0.5))
    np.testing.assert_allclose(half, 0.5 * f + 0.5 * expect, rtol=1e-5, atol=1e-5)


def test_training_drops_the_loss(trained, config):
    loss = trained.history["loss"]
    assert len(loss) == config.steps and trained.resumed_from is None
    assert loss[-5:].mean() < 0.7 * loss[:5].mean(), loss  # 0.52 measured
    assert trained.stride == 4 and trained.style_layers == ("conv1", "fire2", "fire3")


def test_resume_equals_uninterrupted(trained, config, encoder, tmp_path):
    first = train_adain(config, directory=tmp_path, encoder=encoder, progress=False, stop_after_steps=20)
    assert first.steps == 20
    resumed = train_adain(config, directory=tmp_path, encoder=encoder, progress=False)
    assert resumed.resumed_from == 20 and resumed.steps == config.steps
    for a, b in zip(jax.tree.leaves(resumed.decoder[1]), jax.tree.leaves(trained.decoder[1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # a finished run loads from the checkpoint: no step is trained again
    again = train_adain(config, directory=tmp_path, encoder=encoder, progress=False)
    assert again.resumed_from == config.steps and again.steps == config.steps
    np.testing.assert_array_equal(again.history["loss"], resumed.history["loss"])
    # the folder alone is enough to load it; an unfinished run loads as saved
    loaded = load_adain(tmp_path, encoder=encoder)
    assert loaded.config == config._replace(layer="fire3", checkpoint_every=0) and loaded.steps == config.steps
    for a, b in zip(jax.tree.leaves(loaded.decoder[1]), jax.tree.leaves(trained.decoder[1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no AdaIN checkpoint"):
        load_adain(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not found"):
        load_adain(tmp_path / "missing")


def test_checkpoint_of_another_architecture_is_refused(trained, config, encoder):
    with pytest.raises(CheckpointError, match="upsampling='resize', not 'transposed3'"):
        train_adain(config._replace(upsampling="transposed3"), directory=trained.directory, encoder=encoder, progress=False)
    with pytest.raises(CheckpointError, match="layer='fire3', not 'fire2'"):
        train_adain(config._replace(layer="fire2"), directory=trained.directory, encoder=encoder, progress=False)


def test_stylise_controls(trained, images):
    c, s1, s2 = images
    out = np.asarray(adain_stylise(trained, c, s1))
    assert out.shape == (1, 48, 48, 3) and out.min() >= 0 and out.max() <= 1
    compiled = _stylise_pass._cache_size()
    np.testing.assert_array_equal(adain_stylise(trained, c, s1[::-1]).shape, out.shape)  # same shapes: no new program
    assert _stylise_pass._cache_size() == compiled
    # alpha = 0 reconstructs the content: the style does not matter
    np.testing.assert_allclose(adain_stylise(trained, c, s1, alpha=0.0), adain_stylise(trained, c, s2, alpha=0.0), atol=1e-5)
    # identical styles interpolate to that style; weights (1, 0) pick the first
    np.testing.assert_allclose(adain_stylise(trained, c, [s1, s1], weights=[0.3, 0.7]), out, atol=1e-4)
    np.testing.assert_allclose(adain_stylise(trained, c, [s1, s2], weights=[1.0, 0.0]), out, atol=1e-4)
    # a batch with one alpha per image equals separate calls
    sweep = np.asarray(adain_stylise(trained, np.stack([c, c]), s1, alpha=[0.0, 1.0]))
    np.testing.assert_allclose(sweep[1], out[0], atol=1e-4)
    # a size that is no multiple of the stride is padded and cropped back
    odd = adain_stylise(trained, resize(photo("astronaut"), (37, 45)), s2, preserve_color=True)
    assert odd.shape == (1, 37, 45, 3)
    assert content_features(trained, c).shape == (1, 12, 12, 128)


def test_colour_preservation_uses_matched_styles(trained, images):
    from jaxviz.style import match_color

    c, s1, _ = images
    mean, std = style_statistics(trained, s1, c[None])
    ref_mean, ref_std = style_statistics(trained, match_color(s1, c))
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(std, ref_std, rtol=1e-5, atol=1e-4)


def test_bad_input(trained, images):
    c, s1, s2 = images
    with pytest.raises(ShapeError, match="to_rgb"):
        adain_stylise(trained, c[..., :1], s1)
    with pytest.raises(JaxvizError, match="NaN"):
        adain_stylise(trained, np.where(np.arange(48)[:, None, None] == 3, np.nan, c), s1)
    with pytest.raises(ShapeError, match="at least 32x32"):
        adain_stylise(trained, c[:20, :20], s1)
    with pytest.raises(ShapeError, match="style image 1 is 16x16"):
        adain_stylise(trained, c, [s1, s2[:16, :16]])
    with pytest.raises(JaxvizError, match="2 numbers"):
        adain_stylise(trained, c, [s1, s2], weights=[1.0])
    with pytest.raises(JaxvizError, match="sum to 1"):
        adain_stylise(trained, c, [s1, s2], weights=[0.5, 0.6])
    with pytest.raises(JaxvizError, match="alpha"):
        adain_stylise(trained, c, s1, alpha=1.5)
    with pytest.raises(ShapeError, match="channels"):
        adain(np.ones((1, 4, 4, 8)), np.ones((1, 4, 4, 6)))
    with pytest.raises(JaxvizError, match="multiple of 4"):
        train_adain(SMALL._replace(size=30), encoder=trained.encoder)
    with pytest.raises(JaxvizError, match="unknown AdaIN encoder"):
        train_adain(SMALL._replace(encoder="alexnet"))
