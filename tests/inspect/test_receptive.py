import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz import inspect as I
from jaxviz.errors import ShapeError, UnknownLayerError


def test_lenet_geometry_matches_the_architecture(lenet_untrained):
    # conv 5x5 pad 2 -> 2x2 pool -> conv 5x5 valid -> 2x2 pool
    fields = I.receptive_fields(lenet_untrained)
    assert fields == {
        "conv1": I.ReceptiveField((5, 5), (1, 1), (-2, -2)),
        "pool1": I.ReceptiveField((6, 6), (2, 2), (-2, -2)),
        "conv2": I.ReceptiveField((14, 14), (2, 2), (-2, -2)),
        "pool2": I.ReceptiveField((16, 16), (4, 4), (-2, -2)),
    }


def test_squeezenet_geometry(squeezenet_model):
    model = squeezenet_model.replace(input_shape=(96, 96, 3))
    fields = I.receptive_fields(model, ["conv1", "pool1", "fire2", "fire5", "fire9"])
    assert fields["conv1"] == I.ReceptiveField((3, 3), (2, 2), (0, 0))  # 3x3 stride 2, VALID
    assert fields["pool1"] == I.ReceptiveField((7, 7), (4, 4), (0, 0))  # + 3x3/2 max pool
    assert fields["fire2"] == I.ReceptiveField((15, 15), (4, 4), (-4, -4))  # + 3x3 expand, pad 1
    assert fields["fire5"] == I.ReceptiveField((63, 63), (8, 8), (-24, -24))
    assert fields["fire9"] == I.ReceptiveField((96, 96), (0, 0), (0, 0))  # 207 px > the image: all of it


def test_gradient_vanishes_outside_the_box(lenet_trained):
    field = I.receptive_field(lenet_trained, "conv2")
    x = jax.random.uniform(jax.random.key(3), (1, 28, 28, 1))
    for i, j in [(0, 0), (4, 7), (9, 9)]:
        g = jax.grad(lambda xx: lenet_trained.activations(xx, ["conv2"])["conv2"][0, i, j].sum())(x)
        top, left, bottom, right = field.box(i, j, (28, 28))
        outside = np.asarray(jnp.abs(g[0, ..., 0])).copy()
        outside[top:bottom, left:right] = 0
        assert outside.max() == 0
        assert np.abs(np.asarray(g)).sum() > 0


def test_box_clipping():
    f = I.ReceptiveField((14, 14), (2, 2), (-2, -2))
    assert f.box(0, 0) == (-2, -2, 12, 12)
    assert f.box(0, 9, (28, 28)) == (0, 16, 12, 28)


def test_errors(lenet_untrained):
    with pytest.raises(ShapeError, match="without spatial axes"):
        I.receptive_field(lenet_untrained, "fc1")
    with pytest.raises(UnknownLayerError, match="valid layers: conv1, pool1"):
        I.receptive_field(lenet_untrained, "conv3")
