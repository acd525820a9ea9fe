import jax
import numpy as np
import optax
import pytest
from fv_models import tiny

from jaxviz import featureviz as fv
from jaxviz.errors import JaxvizError, ShapeError
from jaxviz.featureviz import transforms as T
from jaxviz.featureviz.render import _step


def test_render_raises_each_channel_and_compiles_once(net):
    param = fv.image_param(16, batch=3)
    r = fv.render(net, fv.channel("conv1", [0, 1, 2]), param, key=jax.random.key(0), steps=40, thresholds=(10, 40), progress=False)
    assert r.images.shape == (3, 16, 16, 3) and r.objective.shape == (40, 3) and r.penalty.shape == (40, 3)
    first, last = r.objective[:5].mean(0), r.objective[-5:].mean(0)
    assert np.all(last > first - 1e-3) and last.sum() > first.sum() + 0.3
    assert set(r.snapshots) == {10, 40}
    np.testing.assert_array_equal(r.snapshots[40], r.images)
    final = fv.score(net, fv.channel("conv1", [0, 1, 2]), r.images)
    assert np.all(np.asarray(final) > r.objective[0])
    before = _step._cache_size()
    fv.render(net, fv.channel("conv1", [3, 4, 5]), param, key=jax.random.key(1), steps=3, progress=False)
    assert _step._cache_size() == before  # a new channel is new data, not a new program


def test_same_key_same_images_and_grey_fixed_size_model():
    grey = tiny(cin=1, size=12, resizable=False)
    obj = fv.class_logit([0, 1])
    kw = dict(key=jax.random.key(2), steps=6, progress=False)
    a = fv.render(grey, obj, fv.image_param(20, batch=2, channels=1), **kw)  # transformed 20 px -> resized to 12
    b = fv.render(grey, obj, fv.image_param(20, batch=2, channels=1), **kw)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (2, 20, 20, 1)


def test_regularisers_change_the_image(net):
    obj = fv.channel("conv1", 1)
    kw = dict(key=jax.random.key(0), steps=30, transforms=T.NONE, progress=False)
    p = fv.pixel_param(16)
    plain = fv.render(net, obj, p, **kw)
    tv = fv.render(net, obj, p, regularisers=fv.Regularisers(tv=50.0), **kw)
    blur = fv.render(net, obj, p, regularisers=fv.Regularisers(blur_every=1, blur_sigma=1.0), **kw)
    assert fv.total_variation(tv.images)[0] < 0.7 * fv.total_variation(plain.images)[0]
    assert fv.total_variation(blur.images)[0] < 0.7 * fv.total_variation(plain.images)[0]
    assert np.all(tv.penalty > 0) and np.all(plain.penalty == 0)


def test_start_from_a_photo_and_continue():
    from jaxviz.data import photo, resize

    net = tiny()
    param = fv.image_param(24)
    img = resize(photo("chelsea"), 24)[None]
    r = fv.render(net, fv.class_logit(2), param, init=param.encode(img), key=jax.random.key(0), steps=1,
                  optimizer=optax.sgd(0.0), transforms=T.NONE, progress=False)
    np.testing.assert_allclose(r.images, img, atol=1e-3)  # zero learning rate: the photo itself


def test_nan_in_the_objective_names_the_step():
    bad = tiny(nan_above=0.9)
    with pytest.raises(JaxvizError, match=r"NaN or infinite at step \d+"):
        fv.render(bad, fv.class_logit(0) + fv.layer("conv1"), fv.pixel_param(8), key=jax.random.key(0), steps=64,
                  optimizer=optax.sgd(100.0), transforms=T.NONE, progress=False)


def test_bad_setups(net):
    with pytest.raises(ShapeError, match="jitter"):
        fv.render(net, fv.channel("conv1", 0), fv.image_param(6), key=jax.random.key(0), steps=1,
                  transforms=T.compose(T.jitter(8)), progress=False)
    with pytest.raises(ShapeError, match="takes 3-channel images"):
        fv.render(net, fv.channel("conv1", 0), fv.image_param(16, channels=1), key=jax.random.key(0), steps=1, progress=False)
    with pytest.raises(JaxvizError, match="thresholds"):
        fv.render(net, fv.channel("conv1", 0), 16, key=jax.random.key(0), steps=4, thresholds=(5,), progress=False)
    with pytest.raises(JaxvizError, match="regulariser weight tv"):
        fv.render(net, fv.channel("conv1", 0), 16, key=jax.random.key(0), steps=4, regularisers=fv.Regularisers(tv=-1.0), progress=False)


def test_deepdream_raises_the_layer_norm_over_octaves(net):
    from jaxviz.data import photo, resize

    img = resize(photo("coffee"), 40)[None]
    r = fv.deepdream(net, img, "conv1", key=jax.random.key(0), octaves=3, octave_scale=1.5, steps=8, jitter=4, progress=False)
    assert r.image.shape == img.shape and [o.shape[1] for o in r.octaves] == [18, 27, 40]
    assert r.objective.shape == (3, 8, 1) and r.objective[-1, -1, 0] > 1.2 * r.objective[0, 0, 0]
    assert float(np.abs(r.image - img).mean()) > 0.01 and r.image.min() >= 0 and r.image.max() <= 1
    with pytest.raises(ShapeError, match="coarsest octave"):
        fv.deepdream(net, img, "conv1", key=jax.random.key(0), octaves=6, jitter=8, progress=False)
    with pytest.raises(ShapeError, match="resizable"):
        fv.deepdream(tiny(resizable=False, size=40), img, "conv1", key=jax.random.key(0), progress=False)


def test_patch_prior_scores_photos_near_half_and_noise_far_above():
    from jaxviz.data import photo, resize

    fit = np.stack([resize(photo(p), 64) for p in ("chelsea", "coffee", "rocket")])
    own = np.asarray(fv.prior_energy(fv.fit_patch_prior(fit, size=5, ridge=0.0), fit))
    prior = fv.fit_patch_prior(fit, size=5)
    held_out = np.asarray(fv.prior_energy(prior, resize(photo("astronaut"), 64)[None]))
    noise = np.asarray(fv.prior_energy(prior, np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype(np.float32)))
    assert own.mean() == pytest.approx(0.5, rel=0.02)  # whitened patches of the fitting photos: unit variance
    assert held_out[0] < 3 and noise[0] > 20 * held_out[0]


def test_total_variation_known_values():
    checker = (np.indices((4, 4)).sum(0) % 2).astype(np.float32)[None, ..., None]
    np.testing.assert_allclose(fv.total_variation(checker), [2.0])
    np.testing.assert_allclose(fv.total_variation(np.full((1, 4, 4, 3), 0.7, np.float32)), [0.0])


def test_class_images_and_their_probabilities():
    net = tiny(classes=3)
    out = fv.class_images(net, [0, 2], setting="pixels", size=16, steps=60, key=jax.random.key(0), samples=4, progress=False)
    assert out.images.shape == (2, 16, 16, 3) and out.setting == "pixels"
    np.testing.assert_array_equal(out.images, np.round(out.images * 255) / 255)  # 8-bit
    np.testing.assert_allclose(out.prob, fv.probability(net, out.images, [0, 2]), rtol=1e-6)
    assert np.all(out.prob > 0.5) and out.robust_prob.shape == (2,)
    with pytest.raises(JaxvizError, match="unknown setting"):
        fv.class_images(net, [0], setting="fancy", key=jax.random.key(0))


def test_atlas_and_semantic_dictionary(net):
    from jaxviz.data import photo, resize

    atlas = fv.channel_atlas(net, "conv1", 3, size=16, steps=4, key=jax.random.key(0), progress=False)
    assert atlas.images.shape == (3, 16, 16, 3)
    img = resize(photo("chelsea"), 16)
    sd = fv.semantic_dictionary(net, img, "conv1", top_k=2)
    acts = np.asarray(net.activations(img[None], ["conv1"])["conv1"])[0]
    np.testing.assert_array_equal(sd.values[..., 0], acts.max(-1))
    assert np.all(sd.values[..., 0] >= sd.values[..., 1])
    fig = fv.dictionary_figure(sd, np.zeros((len(sd.unique), 8, 8, 3)), tile=4)
    assert fig.shape == (64, 64, 3)
    with pytest.raises(ShapeError, match="no spatial axes"):
        fv.semantic_dictionary(net, img, "logits")


def test_redirected_relu_gradient_revives_a_unit_that_plain_gradient_ascent_cannot_move():
    from fv_models import dead_at_grey

    model = dead_at_grey()
    param = fv.image_param(16, batch=2)
    runs = {mode: fv.render(model, fv.channel("unit", 0), param, key=jax.random.key(0), steps=30, transforms=fv.transforms.NONE,
                            progress=False, relu_gradient=mode) for mode in ("gradient", "redirected")}
    assert np.all(runs["gradient"].objective == 0)  # dead from the start: zero gradient, no way up
    np.testing.assert_allclose(runs["gradient"].images, np.asarray(param(param.init(jax.random.split(jax.random.key(0))[0]))), atol=1e-6)
    assert np.all(runs["redirected"].objective[-1] > 1e-3)  # every image brought its unit to life
    with pytest.raises(JaxvizError, match="relu_gradient"):
        fv.render(model, fv.channel("unit", 0), param, key=jax.random.key(0), steps=2, progress=False, relu_gradient="guided")
