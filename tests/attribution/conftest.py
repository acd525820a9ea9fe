"""Fixtures of the attribution tests: the tiny nets of tiny_nets.py and small input batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_nets import tiny_cnn


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


@pytest.fixture(scope="module")
def x8():
    return jax.random.uniform(jax.random.key(42), (2, 8, 8, 3))


@pytest.fixture(scope="module")
def linear():
    """A linear model logits = flatten(x) @ W + c as a plain function, with its W (H*W*C, classes)."""
    w = jax.random.normal(jax.random.key(7), (8 * 8 * 3, 4))
    c = jnp.arange(4.0)

    def f(x):
        return x.reshape(x.shape[0], -1) @ w + c[None]

    return f, np.asarray(w)
