import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxviz.attribution as A
from jaxviz.attribution import metrics as M
from jaxviz.errors import JaxvizError, ShapeError, TargetError, UnknownLayerError


def test_target_out_of_range(cnn, x8, linear):
    with pytest.raises(TargetError, match="out of range"):
        A.gradient(cnn, x8, 4)
    with pytest.raises(TargetError, match="out of range"):
        A.gradient(linear[0], x8, np.array([0, -1]))


def test_targets_wrong_length(cnn, x8):
    with pytest.raises(TargetError, match=r"shape \(2,\)"):
        A.integrated_gradients(cnn, x8, np.array([0, 1, 2]))


def test_unknown_layer_lists_valid(cnn, x8):
    with pytest.raises(UnknownLayerError, match="valid layers: conv1, conv2, logits"):
        A.grad_cam(cnn, x8, 0, layer="fc7")
    with pytest.raises(UnknownLayerError):
        A.unit_projection(cnn, x8, "nope", 0)
    with pytest.raises(UnknownLayerError):
        A.occlusion(cnn, x8, 0, window=4, layer="nope", channel=0)


def test_output_not_logits(x8):
    with pytest.raises(ShapeError, match=r"\(B, classes\)"):
        A.gradient(lambda x: x.sum(), x8, 0)
    with pytest.raises(ShapeError, match=r"\(B, classes\)"):
        A.occlusion(lambda x: x, x8, 0, window=2)


def test_nan_input(cnn, x8):
    with pytest.raises(JaxvizError, match="NaN"):
        A.gradient(cnn, x8.at[0, 0, 0, 0].set(jnp.nan), 0)


def test_bad_counts_and_windows(cnn, x8):
    with pytest.raises(JaxvizError, match="steps must be a positive integer"):
        A.integrated_gradients(cnn, x8, 0, steps=0)
    with pytest.raises(JaxvizError, match="samples must be a positive integer"):
        A.smoothgrad(A.gradient, cnn, x8, 0, key=jax.random.key(0), samples=-1)
    with pytest.raises(JaxvizError, match="chunk_size"):
        A.integrated_gradients(cnn, x8, 0, steps=4, chunk_size=0)
    with pytest.raises(ShapeError, match="larger than the 8x8 image"):
        A.occlusion(cnn, x8, 0, window=9)
    with pytest.raises(JaxvizError, match="steps"):
        M.deletion(cnn, x8, 0, x8, steps=0)
    with pytest.raises(JaxvizError, match="unknown method"):
        A.integrated_gradients(cnn, x8, 0, method="simpson")
    with pytest.raises(JaxvizError, match="explicit key"):
        A.smoothgrad(A.gradient, cnn, x8, 0, key=None)
    with pytest.raises(JaxvizError, match="explicit key"):
        A.integrated_gradients(cnn, x8, 0, baseline="uniform")


def test_input_shape_and_model_kind(cnn, x8):
    with pytest.raises(ShapeError, match="batch"):
        A.gradient(lambda x: x.reshape(1, -1), x8[0], 0)
    with pytest.raises(JaxvizError, match="needs named layers"):
        A.grad_cam(lambda x: x.reshape(2, -1), x8, 0, layer="conv1")
    with pytest.raises(ShapeError, match="CAMs need a convolutional layer"):
        A.grad_cam(cnn, x8, 0, layer="logits")
    with pytest.raises(ShapeError, match="baseline"):
        A.integrated_gradients(cnn, x8, 0, baseline=jnp.zeros((3, 3)))
    with pytest.raises(ShapeError, match="saliency"):
        M.insertion(cnn, x8, 0, jnp.zeros((2, 4, 4)))
