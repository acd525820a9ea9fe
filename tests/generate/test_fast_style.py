"""Fast style transfer (Johnson et al. 2016): the transformer network, training, resuming, checkpoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxviz.data import photo, resize
from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.generate import UPSAMPLINGS, content_images
from jaxviz.generate.fast_style import (
    FastStyleConfig,
    load_fast_style,
    stylise,
    train_fast_style,
    transformer,
)

TINY = FastStyleConfig(width=4, residual_blocks=1, size=48, batch_size=2, steps=12, learning_rate=3e-3)


@pytest.fixture(scope="module")
def style():
    return resize(photo("immunohistochemistry"), 96)


@pytest.fixture(scope="module")
def trained(style, tmp_path_factory):
    """The same run three ways: stopped at step 6 then resumed to 12, and uninterrupted."""
    ckpt = tmp_path_factory.mktemp("fast-style")
    first = train_fast_style(style, config=TINY, checkpoint_dir=ckpt, progress=False, stop_after_steps=6)
    resumed = train_fast_style(style, config=TINY, checkpoint_dir=ckpt, progress=False)
    whole = train_fast_style(style, config=TINY, progress=False)
    return first, resumed, whole, ckpt


@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
def test_transformer_keeps_the_size_and_the_pixel_range(upsampling):
    net = transformer(TINY._replace(upsampling=upsampling))
    y = nnx.jit(lambda n, x: n(x))(net, jnp.full((2, 24, 32, 3), 0.5))
    assert y.shape == (2, 24, 32, 3) and float(y.min()) > 0 and float(y.max()) < 1


def test_batch_norm_updates_its_statistics_only_in_training():
    net = transformer(TINY._replace(norm="batch"))
    before = jax.tree.leaves(nnx.split(net, nnx.Param, ...)[2])
    run = nnx.jit(lambda n, x: n(x))
    x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
    net.eval()
    run(net, x)
    assert all(np.array_equal(a, b) for a, b in zip(before, jax.tree.leaves(nnx.split(net, nnx.Param, ...)[2])))
    net.train()
    run(net, x)
    after = jax.tree.leaves(nnx.split(net, nnx.Param, ...)[2])
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_training_lowers_the_loss_and_resuming_equals_an_uninterrupted_run(trained):
    first, resumed, whole, _ = trained
    assert first.steps == 6 and resumed.resumed_from == 6 and resumed.steps == 12
    loss = whole.history["loss"]
    assert loss[-3:].mean() < 0.8 * loss[:2].mean(), loss
    np.testing.assert_allclose(resumed.history["loss"][:6], first.history["loss"], rtol=0)  # kept in the checkpoint
    np.testing.assert_allclose(resumed.history["loss"], loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(resumed.network.params), jax.tree.leaves(whole.network.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_saved_network_loads_and_stylises_any_size(trained):
    _, resumed, _, ckpt = trained
    loaded = load_fast_style(ckpt)
    assert loaded.config == TINY and loaded.style == resumed.network.style
    img = resize(photo("chelsea"), (37, 50), crop=None)  # not a multiple of 4: padded and cropped back
    y = np.asarray(stylise(loaded, img))
    assert y.shape == (1, 37, 50, 3)
    np.testing.assert_allclose(y, np.asarray(resumed.network(img)), atol=1e-6)


def test_a_checkpoint_of_another_architecture_or_style_is_refused(trained, style):
    *_, ckpt = trained
    with pytest.raises(CheckpointError, match="width"):
        train_fast_style(style, config=TINY._replace(width=8), checkpoint_dir=ckpt, progress=False)
    with pytest.raises(CheckpointError, match="style"):
        train_fast_style(style[::-1], config=TINY, checkpoint_dir=ckpt, progress=False)


@pytest.mark.parametrize("change, message", [
    (dict(upsampling="bilinear"), "unknown upsampling"),
    (dict(norm="group"), "unknown normalisation"),
    (dict(size=50), "multiple of 4"),
    (dict(noise_std=-1.0), "noise_std"),
    (dict(stability_weight=1.0), "needs noise_std"),
])
def test_bad_settings_are_named(style, change, message):
    with pytest.raises(JaxvizError, match=message):
        train_fast_style(style, config=TINY._replace(**change), progress=False)


def test_bad_images_are_refused(trained):
    net = trained[1].network
    with pytest.raises(ShapeError, match="RGB"):
        stylise(net, np.zeros((16, 16, 1), np.float32))
    with pytest.raises(ShapeError, match="too small"):
        stylise(net, np.zeros((4, 16, 3), np.float32))
    with pytest.raises(JaxvizError, match="NaN"):
        stylise(net, np.full((16, 16, 3), np.nan, np.float32))


def test_content_folder_skips_bad_files_and_fails_when_none_is_left(tmp_path):
    from PIL import Image

    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.warns(UserWarning, match="skipping"), pytest.raises(JaxvizError, match="smaller than the 32 px crop"):
        content_images(tmp_path, size=32)
    Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)).save(tmp_path / "ok.png")
    with pytest.warns(UserWarning, match="skipping"):
        source = content_images(tmp_path, size=32)
    assert source.names == ("ok.png",)
    a = source.batch(3, 2)
    assert a.shape == (2, 32, 32, 3) and np.array_equal(a, source.batch(3, 2)) and not np.array_equal(a, source.batch(4, 2))
    (tmp_path / "empty").mkdir()
    with pytest.raises(JaxvizError, match="no image files"):
        content_images(tmp_path / "empty", size=32)
    with pytest.raises(JaxvizError, match="not found"):
        content_images(tmp_path / "missing", size=32)
