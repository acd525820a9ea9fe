import jax
import jax.numpy as jnp
import numpy as np

import jaxviz.attribution as A


def left_half(x):
    """Logits depend only on the left half of the image (columns 0..3 of 8)."""
    s = x[:, :, :4].mean(axis=(1, 2, 3))
    return jnp.stack([s, -s, 0.3 * s], axis=1)


def test_occlusion_outside_receptive_field_changes_nothing(x8):
    o = A.occlusion(left_half, x8, 0, window=4, stride=2)
    assert o.prob.shape == o.label.shape == (2, 8, 8)
    assert o.prob_grid.shape == (2, 3, 3) and o.activation is None
    ref = jax.nn.softmax(left_half(x8))[:, 0]
    np.testing.assert_allclose(o.reference, ref, rtol=1e-6)
    np.testing.assert_allclose(o.prob_grid[:, :, 2], np.repeat(ref[:, None], 3, 1), rtol=1e-6)  # columns 4..7
    assert not np.allclose(o.prob_grid[:, :, 0], ref[:, None])
    # pixels only ever covered by right-half windows keep the reference value
    np.testing.assert_allclose(o.prob[:, :, 6:], np.broadcast_to(ref[:, None, None], (2, 8, 2)), rtol=1e-6)


def test_occlusion_chunking_and_jit(x8):
    a = A.occlusion(left_half, x8, 1, window=3, stride=1, chunk_size=5, output="logit")
    b = jax.jit(lambda x: A.occlusion(left_half, x, 1, window=3, stride=1, chunk_size=36, output="logit"))(x8)
    for u, v in zip(a, b):
        if u is not None:
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7)
    # occluding with grey (0.5) a 3x3 patch changes the logit by exactly the mean change
    i, j = 0, 1
    xo = x8.at[:, i : i + 3, j : j + 3].set(0.5)
    np.testing.assert_allclose(a.prob_grid[:, i, j], left_half(xo)[:, 1], rtol=1e-5)


def test_occlusion_labels_and_activation(cnn, x8):
    o = A.occlusion(cnn, x8, 2, window=4, stride=4, layer="conv2", channel=1, fill=jnp.array([0.0, 0.5, 1.0]))
    assert o.activation.shape == (2, 8, 8) and o.activation_grid.shape == (2, 2, 2)
    xo = x8.at[:, 4:, :4].set(jnp.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(o.activation_grid[:, 1, 0], cnn.activations(xo)["conv2"][..., 1].sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(o.label_grid[:, 1, 0], jnp.argmax(cnn(xo), axis=1))
    np.testing.assert_array_equal(o.label[:, 5, 2], o.label_grid[:, 1, 0])
