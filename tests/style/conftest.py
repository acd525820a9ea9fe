"""A tiny two-layer convolutional net (random fixed filters, one max pooling) for fast style tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxviz.models import Model, Taps


def tiny_net(seed: int = 0, name: str = "tiny") -> Model:
    rng = np.random.default_rng(seed)
    params = {"k1": jnp.asarray(rng.normal(size=(3, 3, 3, 8)).astype(np.float32) * 0.5),
              "k2": jnp.asarray(rng.normal(size=(3, 3, 8, 8)).astype(np.float32) * 0.2)}

    def forward(p, x, deltas):
        taps = Taps(deltas)
        conv = lambda h, k: jax.lax.conv_general_dilated(h, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = taps("conv1", jax.nn.relu(conv(x - 0.5, p["k1"])))
        h = taps("pool1", jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"))
        h = taps("conv2", jax.nn.relu(conv(h, p["k2"])))
        return taps("logits", h.mean(axis=(1, 2))), taps.acts

    return Model(params, forward, ("conv1", "pool1", "conv2", "logits"), (16, 16, 3), None, name, resizable=True)


@pytest.fixture(scope="session")
def tiny():
    return tiny_net()
