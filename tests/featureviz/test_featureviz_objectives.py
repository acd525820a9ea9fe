import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz import featureviz as fv
from jaxviz.errors import JaxvizError, ShapeError, TargetError, UnknownLayerError


@pytest.fixture(scope="module")
def feats():
    acts = jax.random.normal(jax.random.key(0), (3, 4, 5, 6))
    logits = jax.random.normal(jax.random.key(1), (3, 7))
    return fv.Features(jnp.zeros((3, 8, 8, 3)), {"a": acts, "v": acts.mean(axis=(1, 2))}, logits)


def test_known_values(feats):
    a, logits = np.asarray(feats.acts["a"]), np.asarray(feats.logits)
    np.testing.assert_allclose(fv.channel("a", 2)(feats), a[..., 2].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(fv.channel("a", [0, 1, 5])(feats), [a[0, ..., 0].mean(), a[1, ..., 1].mean(), a[2, ..., 5].mean()], rtol=1e-5)
    np.testing.assert_allclose(fv.neuron("a", 4, x=3, y=1)(feats), a[:, 1, 3, 4])
    np.testing.assert_allclose(fv.neuron("a", 4)(feats), a[:, 2, 2, 4])  # centre of 4x5
    np.testing.assert_allclose(fv.neuron("v", 4)(feats), a.mean(axis=(1, 2))[:, 4], rtol=1e-5)
    np.testing.assert_allclose(fv.layer("a")(feats), (a**2).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(fv.class_logit(3)(feats), logits[:, 3])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(fv.class_prob([1, 2, 3])(feats), p[[0, 1, 2], [1, 2, 3]], rtol=1e-5)
    v = np.arange(6.0)
    np.testing.assert_allclose(fv.direction("a", v)(feats), a.mean(axis=(1, 2)) @ v, rtol=1e-5)


def test_composition_is_linear(feats):
    a, b = fv.channel("a", 1), fv.class_logit(2)
    combo = a + 2 * b - a / 4
    np.testing.assert_allclose(combo(feats), 0.75 * a(feats) + 2 * b(feats), rtol=1e-5)
    assert sum([a, b])(feats).shape == (3,)
    assert combo.layers == ("a",) and combo.needs_logits and not a.needs_logits
    with pytest.raises(JaxvizError, match="scalars"):
        a * np.ones(3)


def test_interpolation_weights_go_from_a_to_b(feats):
    a, b = fv.channel("a", 0), fv.channel("a", 1)
    out = np.asarray(fv.interpolate(a, b, 3)(feats))
    np.testing.assert_allclose(out, [a(feats)[0], 0.5 * (a(feats)[1] + b(feats)[1]), b(feats)[2]], rtol=1e-5)


def test_weighted_blocks_select_one_objective_per_image(feats):
    a, b = fv.channel("a", 0), fv.channel("a", 3)
    out = np.asarray((fv.weighted(a, [1, 1, 0]) + fv.weighted(b, [0, 0, 1]))(feats))
    np.testing.assert_allclose(out, [a(feats)[0], a(feats)[1], b(feats)[2]], rtol=1e-6)
    with pytest.raises(ShapeError, match="one weight per image"):
        fv.weighted(a, np.ones((3, 1)))


def test_diversity_is_minus_one_for_identical_images_and_higher_otherwise(feats):
    same = fv.Features(feats.images, {"a": jnp.tile(feats.acts["a"][:1], (3, 1, 1, 1))}, None)
    np.testing.assert_allclose(fv.diversity("a")(same), -2 / 3, rtol=1e-5)  # each image: -(B-1)/B
    assert np.all(np.asarray(fv.diversity("a")(feats)) > -2 / 3)


def test_checks_against_the_model(net):
    shape = (2, 16, 16, 3)
    with pytest.raises(UnknownLayerError, match="valid layers: conv1, logits"):
        fv.channel("conv9", 0).check(net, shape)
    with pytest.raises(JaxvizError, match="channel 6 is out of range for layer 'conv1'"):
        fv.channel("conv1", [0, 6]).check(net, shape)
    with pytest.raises(JaxvizError, match="outside layer 'conv1' of spatial size 16x16"):
        fv.neuron("conv1", 0, x=3, y=16).check(net, shape)
    with pytest.raises(ShapeError, match="no spatial axes"):
        fv.neuron("logits", 0, x=0, y=0).check(net, shape)
    with pytest.raises(TargetError, match="class index 5 is out of range for tiny"):
        fv.class_logit(5).check(net, shape)
    with pytest.raises(ShapeError, match="3 per-image indexs|3 per-image index"):
        fv.channel("conv1", [0, 1, 2]).check(net, shape)
    with pytest.raises(ShapeError, match="at least 2"):
        fv.diversity("conv1").check(net, (1, 16, 16, 3))
    fv.neuron("conv1", 5, x=15, y=15).check(net, shape)  # the last valid unit passes


def test_a_mixed_layer_and_class_objective_runs_the_network_once(net):
    from jaxviz.featureviz.render import features

    x = jax.random.uniform(jax.random.key(2), (2, 16, 16, 3))
    mixed = fv.channel("conv1", 1) + fv.class_logit(2)
    jaxpr = jax.make_jaxpr(lambda x: mixed(features(net, mixed, x)))(x)
    convs = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert len(convs) == 1
    f = features(net, mixed, x)
    logits, acts = net.probe(x)
    np.testing.assert_allclose(f.logits, logits, rtol=1e-6)
    np.testing.assert_allclose(f.acts["conv1"], acts["conv1"], rtol=1e-6)
    assert set(f.acts) == {"conv1"}
