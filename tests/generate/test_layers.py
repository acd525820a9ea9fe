"""The generators' convolution forward on CPU computes exactly XLA's VALID convolution, and so do its gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.generate.layers import _valid_conv

DN = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("batch, side, cin, cout, kernel, stride", [
    (1, 40, 16, 3, 9, 1),   # an output layer: input channels zero-padded to 32
    (2, 33, 4, 8, 3, 2),    # stride 2, odd size
    (1, 30, 32, 3, 9, 1),
    (3, 21, 8, 16, 3, 1),
])
def test_valid_conv_equals_xla_forward_and_gradients(batch, side, cin, cout, kernel, stride):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, side, side, cin), np.float32))
    w = jnp.asarray(rng.standard_normal((kernel, kernel, cin, cout)).astype(np.float32) * 0.1)
    ours = lambda x, w: _valid_conv(x, w, (stride, stride), "VALID", None, None, DN)
    xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), "VALID", dimension_numbers=DN)
    np.testing.assert_allclose(ours(x, w), xla(x, w), rtol=1e-5, atol=1e-5)
    assert ours(x, w).shape == xla(x, w).shape
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
    for a, b in zip(jax.grad(loss(ours), (0, 1))(x, w), jax.grad(loss(xla), (0, 1))(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)

