"""Tiny hand-built models for the attribution tests (pure jnp, no flax: they compile in a blink)."""

import jax
import jax.numpy as jnp

from jaxviz.models.contract import Model, Taps


def conv(x, w, b=None):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if b is None else y + b.reshape(1, 1, 1, -1)


def max_pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def tiny_cnn(seed=0, *, size=8, cin=3, classes=4, relu=True, bias=True, pool=True) -> Model:
    """conv3x3(4) -> ReLU -> [maxpool] -> conv3x3(5) -> ReLU -> global mean -> dense; taps conv1, conv2, logits."""
    k = jax.random.split(jax.random.key(seed), 6)
    params = {
        "conv1": {"kernel": 0.5 * jax.random.normal(k[0], (3, 3, cin, 4)), "bias": 0.1 * jax.random.normal(k[1], (4,))},
        "conv2": {"kernel": 0.5 * jax.random.normal(k[2], (3, 3, 4, 5)), "bias": 0.1 * jax.random.normal(k[3], (5,))},
        "dense": {"kernel": jax.random.normal(k[4], (5, classes)), "bias": 0.1 * jax.random.normal(k[5], (classes,))},
    }
    act = jax.nn.relu if relu else (lambda h: h)

    def forward(p, x, deltas):
        taps = Taps(deltas)
        b = (lambda name: p[name]["bias"]) if bias else (lambda name: None)
        h = taps("conv1", act(conv(x, p["conv1"]["kernel"], b("conv1"))))
        if pool:
            h = max_pool(h)
        h = taps("conv2", act(conv(h, p["conv2"]["kernel"], b("conv2"))))
        out = h.mean(axis=(1, 2)) @ p["dense"]["kernel"]
        if bias:
            out = out + p["dense"]["bias"][None]
        return taps("logits", out), taps.acts

    return Model(params=params, forward=forward, layers=("conv1", "conv2", "logits"), input_shape=(size, size, cin), name="tiny")
