"""Images from features: rendering with known answers, the generator's shapes, training that learns,
resumes bit for bit and refuses another architecture's checkpoint, held-out error, checkerboards."""

import jax
import numpy as np
import pytest
from flax import nnx

from jaxviz.errors import CheckpointError, JaxvizError, ShapeError
from jaxviz.generate import (
    TRANSFORMS,
    UPSAMPLINGS,
    GeneratorConfig,
    Holdout,
    checkerboard_score,
    decode_hidden,
    evaluate_generator,
    generate,
    hidden_features,
    render_items,
    sample_transforms,
    select_items,
    train_generator,
)
from jaxviz.generate.from_features import IDENTITY, Ranges, build_generator, normalised, physical

TINY = GeneratorConfig(n_items=4, hidden=32, width=4, batch_size=16, steps=40, learning_rate=3e-3)


@pytest.fixture(scope="module")
def items():
    return select_items("fashion_mnist", 6)


def _render(items, ids, t):
    return [np.asarray(a) for a in render_items(items, np.asarray(ids), np.asarray(t, np.float32))]


def test_items_cycle_through_classes_and_count_is_checked(items):
    assert items.images.shape == (6, 28, 28, 1) and items.labels.tolist() == list(range(6))
    assert items.names[7 % 6].startswith("Trouser")
    for bad in (0, 1001, 2.5):
        with pytest.raises(JaxvizError, match="n_items"):
            select_items(items.images, bad)
    with pytest.raises(JaxvizError, match="unknown data set 'cifar10'"):
        select_items("cifar10", 3)


def test_identity_render_is_the_centred_item_and_mask_its_foreground(items):
    image, mask = _render(items, range(6), np.tile(IDENTITY, (6, 1)))
    assert image.shape == mask.shape == (6, 32, 32, 1)
    np.testing.assert_array_equal(image[:, 2:30, 2:30], items.images)
    assert image[:, :2].max() == image[:, 30:].max() == image[:, :, :2].max() == image[:, :, 30:].max() == 0
    np.testing.assert_array_equal(mask[:, 2:30, 2:30], items.images > 0.1)
    assert mask.sum() == (items.images > 0.1).sum()


def test_shift_rotation_and_brightness_have_known_answers(items):
    ids = np.arange(3)
    centred, mask = _render(items, ids, np.tile(IDENTITY, (3, 1)))
    shift = np.tile(IDENTITY, (3, 1))
    shift[:, 0], shift[:, 1] = 2 / (0.15 * 32), -3 / (0.15 * 32)  # 2 px right, 3 px up
    moved, _ = _render(items, ids, shift)
    np.testing.assert_allclose(moved[:, :29, 2:], centred[:, 3:, :30], atol=1e-5)
    quarter = np.tile(IDENTITY, (3, 1))
    quarter[:, 2] = 90 / 45  # 90 degrees counter-clockwise, beyond the training range
    turned, _ = _render(items, ids, quarter)
    np.testing.assert_allclose(turned, np.rot90(centred, 1, axes=(1, 2)), atol=1e-5)
    dim = np.tile(IDENTITY, (3, 1))
    dim[:, 5] = -1  # brightness 1 - 0.5
    dark, dark_mask = _render(items, ids, dim)
    np.testing.assert_allclose(dark, 0.5 * centred, atol=1e-7)
    np.testing.assert_array_equal(dark_mask, mask)


def test_any_transformation_matches_scipy_affine_transform(items):
    """An independent renderer: scipy's inverse affine map with bilinear interpolation, zero outside."""
    from scipy.ndimage import affine_transform

    t = np.asarray(jax.random.uniform(jax.random.key(3), (4, 6), minval=-1, maxval=1))
    image, mask = _render(items, range(4), t)
    for k, (tx, ty, deg, zoom, aspect, bright) in enumerate(np.asarray(physical(t), np.float64)):
        c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
        sx, sy = zoom * np.sqrt(aspect), zoom / np.sqrt(aspect)
        matrix = np.array([[c / sy, s / sy], [-s / sx, c / sx]])  # (row, col) on the canvas -> on the item
        offset = 13.5 - matrix @ np.array([15.5 + ty, 15.5 + tx])
        drawn = affine_transform(items.images[k, ..., 0].astype(np.float64), matrix, offset, output_shape=(32, 32), order=1, mode="grid-constant")
        np.testing.assert_allclose(image[k, ..., 0], bright * drawn, atol=1e-4)
        np.testing.assert_array_equal(mask[k, ..., 0], drawn > 0.1 + 1e-4 * (np.abs(drawn - 0.1) < 1e-4))


def test_parameters_round_trip():
    p = np.asarray(jax.random.uniform(jax.random.key(0), (50, 6), minval=-1, maxval=1))
    v = np.asarray(physical(p, Ranges(), 48))
    assert np.abs(v[:, 2]).max() <= 45 and v[:, 5].min() >= 0.5 and v[:, 5].max() <= 1
    np.testing.assert_allclose(normalised(v, Ranges(), 48), p, atol=1e-5)


def test_held_out_band_is_never_sampled_for_training():
    band = Holdout("zoom", -0.2, 0.3)
    train = np.asarray(sample_transforms(jax.random.key(1), 4000, band))
    held = np.asarray(sample_transforms(jax.random.key(1), 4000, band, held_out=True))
    j = TRANSFORMS.index("zoom")
    assert not np.any((train[:, j] >= -0.2) & (train[:, j] <= 0.3)) and np.abs(train).max() <= 1
    assert held[:, j].min() >= -0.2 and held[:, j].max() <= 0.3
    assert np.abs(train[:, j].mean()) < 0.05 and train[:, j].min() < -0.95 and train[:, j].max() > 0.95  # uniform outside
    with pytest.raises(JaxvizError, match="held-out transformation"):
        sample_transforms(jax.random.key(1), 4, Holdout("blur", 0, 0.5))


@pytest.mark.parametrize("mode", UPSAMPLINGS)
def test_generator_shapes_per_upsampling(mode):
    gen = build_generator(GeneratorConfig(n_items=5, hidden=16, width=4, canvas=48, upsampling=mode))
    ident, t = jax.nn.one_hot(np.arange(3), 5), np.tile(IDENTITY, (3, 1))
    image, mask, h, decoded = nnx.jit(lambda g, i, t: (*g(i, t), g.hidden(i, t), g.decode(g.hidden(i, t))[0]))(gen, ident, t)
    assert image.shape == mask.shape == (3, 48, 48, 1)
    assert 0 < float(image.min()) and float(image.max()) < 1 and 0 < float(mask.min()) and float(mask.max()) < 1
    assert h.shape == (3, 6 * 6 * 16)
    np.testing.assert_allclose(decoded, image, atol=1e-6)


def test_bad_generator_settings_are_refused():
    with pytest.raises(JaxvizError, match="upsampling 'bilinear'"):
        build_generator(GeneratorConfig(upsampling="bilinear"))
    with pytest.raises(JaxvizError, match="multiple of 8"):
        train_generator(TINY._replace(canvas=36))


@pytest.mark.slow
def test_training_learns_resumes_exactly_and_checks_the_architecture(tmp_path):
    whole = train_generator(TINY, progress=False)
    loss = whole.history["loss"]
    assert len(loss) == 40 and loss[-5:].mean() < 0.75 * loss[:3].mean()

    ckpt = tmp_path / "gen"
    first = train_generator(TINY, checkpoint_dir=ckpt, progress=False, stop_after_steps=25)
    assert first.steps == 25 and first.resumed_from is None
    resumed = train_generator(TINY, checkpoint_dir=ckpt, progress=False)
    assert resumed.resumed_from == 25 and resumed.steps == 40
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(resumed.history["loss"], loss, rtol=1e-6)  # the steps before the stop come from the checkpoint
    loaded = train_generator(TINY, checkpoint_dir=ckpt, progress=False)  # finished: loaded, not retrained
    assert loaded.resumed_from == 40 and loaded.steps == 40
    np.testing.assert_array_equal(loaded.history["loss"], resumed.history["loss"])
    with pytest.raises(CheckpointError, match="architecture"):
        train_generator(TINY._replace(upsampling="transposed3"), checkpoint_dir=ckpt, progress=False)

    ev = evaluate_generator(whole, 64)
    untrained = evaluate_generator(whole._replace(params=nnx.split(build_generator(TINY))[1]), 64)
    for split in (ev.train, ev.held_out):
        assert set(split) == {"image_mse", "mask_mse", "mask_iou"} and all(np.isfinite(v) for v in split.values())
    assert ev.train["image_mse"] < 0.6 * untrained.train["image_mse"] and ev.held_out["image_mse"] < 0.6 * untrained.held_out["image_mse"]

    ids, t = np.array([0, 3]), np.tile(IDENTITY, (2, 1))
    np.testing.assert_allclose(decode_hidden(whole, hidden_features(whole, ids, t))[0], generate(whole, ids, t)[0], atol=1e-6)
    blend = generate(whole, np.eye(4, dtype=np.float32)[[0, 3]], t)[0]  # one-hot rows equal integer ids
    np.testing.assert_allclose(blend, generate(whole, ids, t)[0], atol=1e-6)
    with pytest.raises(JaxvizError, match="0..3"):
        generate(whole, np.array([4]), t[:1])
    with pytest.raises(ShapeError, match=r"\(B, 4\)"):
        generate(whole, np.ones((1, 5), np.float32), t[:1])


def test_transposed3_prints_a_checkerboard_resize_does_not():
    """Untrained, the uneven overlap of a 3x3 stride-2 transposed convolution already leaves a
    period-2 pattern (Odena et al. 2016); nearest resize + convolution does not."""
    ids, t = jax.nn.one_hot(np.arange(8) % 5, 5), np.asarray(sample_transforms(jax.random.key(0), 8))
    run = nnx.jit(lambda g, i, t: g(i, t)[0])
    for seed in range(3):
        scores = {m: checkerboard_score(run(build_generator(GeneratorConfig(n_items=5, hidden=32, width=4, upsampling=m, seed=seed)), ids, t)).mean()
                  for m in ("transposed3", "resize")}
        assert scores["transposed3"] > 4 * scores["resize"], scores
