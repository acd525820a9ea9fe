"""Texture synthesis, style transfer and doodles: known answers on tiny nets, the quality bar on SqueezeNet."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.data import photo, to_rgb
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.models import from_functions
from jaxviz.style import (
    disjoint_crops,
    extractor,
    gram_distance,
    growing_subsets,
    kmeans_segments,
    masks_from_colors,
    match_color,
    neural_doodle,
    one_hot,
    statistics,
    style_transfer,
    synthesize_texture,
)
from jaxviz.style.optimize import _run_jit


def _identity_model():
    return from_functions(lambda x: x, lambda a: a.mean(axis=(1, 2)), layer="pixels", name="pixels")


def test_lbfgs_matches_first_order_statistics_exactly():
    """On identity features the mean statistic is linear in the pixels: L-BFGS reaches the target means."""
    target = np.stack([np.full((8, 8, 3), v, np.float32) for v in (0.4, 0.6)]) * np.array([1.0, 0.9, 1.05], np.float32)
    res = synthesize_texture(_identity_model(), target, key=jax.random.key(0), layers=["pixels"], statistic="mean", steps=10)
    assert res.status != "nan", res.message  # it may stop early once converged
    np.testing.assert_allclose(np.asarray(res.image).mean(axis=(1, 2)), target.mean(axis=(1, 2)), atol=1e-3)
    assert float(res.loss.max()) < 1e-6 and res.losses[0] > 1e-3


def test_adam_reduces_the_gram_loss_and_compiles_once(tiny):
    tex = jax.random.uniform(jax.random.key(3), (2, 16, 16, 3))
    kw = dict(layers=["conv1", "conv2"], method="adam", steps=30, learning_rate=0.05)
    res = synthesize_texture(tiny, tex, key=jax.random.key(0), **kw)
    start = statistics(extractor(tiny, ["conv1", "conv2"]), jax.random.uniform(jax.random.key(0), (2, 16, 16, 3)))
    assert res.image.shape == (2, 16, 16, 3) and res.status == "ok"
    assert res.losses[-1] < 0.2 * res.losses[0]
    assert np.all(np.asarray(res.gram_distance) < np.asarray(gram_distance(start, statistics(extractor(tiny, ["conv1", "conv2"]), tex))))
    before = _run_jit._cache_size()
    again = synthesize_texture(tiny, tex, key=jax.random.key(1), **kw)
    assert _run_jit._cache_size() == before and again.status == "ok"
    with pytest.raises(JaxvizError, match="2 non-negative numbers"):
        synthesize_texture(tiny, tex, key=jax.random.key(0), layers=["conv1", "conv2"], weights=[1.0], steps=1)


def test_growing_subsets_rows():
    np.testing.assert_allclose(growing_subsets(["a", "b", "c"]), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_nan_stops_and_keeps_the_last_good_image():
    model = from_functions(lambda x: jnp.log(x), lambda a: a.mean(axis=(1, 2)), layer="log", name="log")  # -inf at 0
    dark = np.full((1, 8, 8, 3), 0.01, np.float32)
    res = synthesize_texture(model, dark, key=jax.random.key(0), layers=["log"], statistic="mean", method="adam",
                             steps=200, learning_rate=0.2)
    assert res.status == "nan" and res.steps < 200 and "NaN" in res.message
    assert np.all(np.isfinite(np.asarray(res.image))) and np.all(np.isnan(res.losses[res.steps + 1:]))


@jax.custom_vjp
def _wrong_gradient(x):
    return x


_wrong_gradient.defvjp(lambda x: (x, None), lambda _, g: (-g,))


def test_failed_line_search_stops_and_keeps_the_start():
    model = from_functions(_wrong_gradient, lambda a: a.mean(axis=(1, 2)), layer="pixels", name="liar")
    res = synthesize_texture(model, np.full((1, 8, 8, 3), 0.9, np.float32), key=jax.random.key(0), layers=["pixels"],
                             statistic="mean", steps=10)
    assert res.status == "linesearch_failed" and res.steps == 0 and "line search" in res.message
    start = np.clip(0.5 + 0.1 * np.asarray(jax.random.normal(jax.random.key(0), (1, 8, 8, 3))), 0, 1)
    np.testing.assert_allclose(np.asarray(res.image), start, atol=1e-6)


def test_style_transfer_weights_and_inits(tiny):
    content = np.asarray(jax.random.uniform(jax.random.key(4), (16, 16, 3)))
    style = np.asarray(jax.random.uniform(jax.random.key(5), (24, 24, 3))) ** 3
    res = style_transfer(tiny, np.stack([content] * 2), style, content_weight=np.array([1e4, 0.0]), style_weight=np.array([0.0, 1.0]),
                         content_layer_name="conv2", style_layer_names=["conv1", "conv2"], method="adam", steps=40, learning_rate=0.02)
    np.testing.assert_allclose(np.asarray(res.image[0]), content, atol=1e-5)  # content only, started from content: unchanged
    assert float(res.content_loss[0]) < 1e-8 and float(res.style_loss[1]) < float(res.style_loss[0])
    with pytest.raises(JaxvizError, match="key"):
        style_transfer(tiny, content, style, init="noise", content_layer_name="conv2", style_layer_names=["conv1"], steps=1)
    with pytest.raises(ShapeError, match="style image has 1"):
        style_transfer(tiny, content, style[..., :1], content_layer_name="conv2", style_layer_names=["conv1"], steps=1)
    with pytest.raises(JaxvizError, match="one per image"):
        style_transfer(tiny, content, style, content_weight=[1.0, 2.0], content_layer_name="conv2", style_layer_names=["conv1"], steps=1)


def test_match_color_imposes_mean_and_covariance():
    rng = np.random.default_rng(0)
    src = rng.uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    ref = np.clip(rng.normal(0.5, 0.05, (16, 16, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 0.5]]), 0, 1).astype(np.float32)
    out = match_color(src, ref).reshape(-1, 3)
    np.testing.assert_allclose(out.mean(0), ref.reshape(-1, 3).mean(0), atol=1e-3)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.cov(ref.reshape(-1, 3), rowvar=False), atol=2e-4)


def test_segments_and_masks():
    img = np.zeros((6, 8, 3), np.float32)
    img[:, 4:] = [0.9, 0.1, 0.1]
    labels, centres = kmeans_segments(img, 2)
    assert set(np.unique(labels[:, :4])) == {0} and set(np.unique(labels[:, 4:])) == {1}
    np.testing.assert_allclose(centres, [[0, 0, 0], [0.9, 0.1, 0.1]], atol=1e-6)
    np.testing.assert_array_equal(masks_from_colors(img * 0.95, centres), one_hot(labels, 2))


def test_doodle_masks_are_checked(tiny):
    style = np.asarray(jax.random.uniform(jax.random.key(6), (16, 16, 3)))
    masks = one_hot(np.repeat(np.arange(2), 8)[None].repeat(16, 0), 2)
    with pytest.raises(ShapeError, match="12x16 but the image is 16x16"):
        neural_doodle(tiny, style, masks[:12], masks, key=jax.random.key(0), layers=["conv1"])
    with pytest.raises(JaxvizError, match="segment 1 has no pixels"):
        neural_doodle(tiny, style, masks, one_hot(np.zeros((16, 16), int), 2), key=jax.random.key(0), layers=["conv1"])
    with pytest.raises(ShapeError, match="2 segments"):
        neural_doodle(tiny, style, masks, masks[..., :1], key=jax.random.key(0), layers=["conv1"])


def test_doodle_matches_each_segment_to_its_own(tiny):
    """Left half dark noise, right half bright stripes; the new layout swaps them: each segment of the
    result is closer to its own segment of the style than to the other."""
    rng = np.random.default_rng(0)
    style = np.zeros((16, 16, 3), np.float32)
    style[:, :8] = rng.uniform(0, 0.3, (16, 8, 3))
    style[:, 8:] = 0.6 + 0.4 * (np.arange(16)[:, None, None] % 2)
    sm = one_hot(np.repeat(np.arange(2), 8)[None].repeat(16, 0), 2)
    res = neural_doodle(tiny, style, sm, sm[:, ::-1], key=jax.random.key(0), layers=["conv1", "conv2"], steps=40)
    d = np.asarray(res.segment_distance[0])
    assert res.status == "ok" and d[0, 0] < d[0, 1] and d[1, 1] < d[1, 0]
    assert np.asarray(res.image)[0, :, :8].mean() > np.asarray(res.image)[0, :, 8:].mean()  # bright segment now on the left


@pytest.mark.slow
def test_squeezenet_texture_beats_the_disjoint_crop_bar(squeezenet_model):
    """Gatys' texture synthesis on real weights and a real texture: the synthesised brick's Gram matrices
    are closer to the source's than a disjoint crop of the brick texture itself (48 px, 60 Adam steps)."""
    src, other = disjoint_crops(to_rgb(photo("brick")), 48)
    res = synthesize_texture(squeezenet_model, src, key=jax.random.key(0), method="adam", steps=60, learning_rate=0.05)
    ext = extractor(squeezenet_model, ("conv1", "pool1", "pool3", "pool5", "fire8"))
    bar = float(gram_distance(statistics(ext, other[None]), statistics(ext, src[None]))[0])
    assert res.status == "ok" and float(res.gram_distance[0]) < bar, (float(res.gram_distance[0]), bar)


def test_luminance_only_transfer_keeps_the_content_colours_coarse_to_fine(tiny):
    from jaxviz.style import rgb_to_yiq

    content = np.asarray(jax.random.uniform(jax.random.key(7), (16, 16, 3))) * 0.6 + 0.2
    style = np.asarray(jax.random.uniform(jax.random.key(8), (16, 16, 3)))
    res = style_transfer(tiny, content, style, preserve_color="luminance", scales=(8, 16), content_layer_name="conv2",
                         style_layer_names=["conv1", "conv2"], method="adam", steps=5, learning_rate=0.05)
    assert res.image.shape == (1, 16, 16, 3) and res.status == "ok"
    out, ref = rgb_to_yiq(np.asarray(res.image[0])), rgb_to_yiq(content)
    inside = np.all((np.asarray(res.image[0]) > 1e-3) & (np.asarray(res.image[0]) < 1 - 1e-3), axis=-1)  # not clipped
    np.testing.assert_allclose(out[inside][:, 1:], ref[inside][:, 1:], atol=1e-4)  # chrominance is the content's
    assert np.abs(out[..., 0] - ref[..., 0]).max() > 1e-2  # luminance was stylised


@pytest.mark.slow
def test_hed_vgg16_texture_with_average_pooling():
    """The HED VGG-16 stack (SAME max pooling, rewritten to average pooling) at Gatys' texture layers."""
    from jaxviz.models import load_hed_vgg16

    hed = load_hed_vgg16()
    src, _ = disjoint_crops(to_rgb(photo("grass")), 32)
    res = synthesize_texture(hed, src, key=jax.random.key(0), pooling="avg", method="adam", steps=15, learning_rate=0.05)
    assert res.status == "ok" and res.losses[-1] < 0.5 * res.losses[0]
