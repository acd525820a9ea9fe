"""Tiny hand-built models for the feature-visualisation tests (pure jnp: they compile in a blink)."""

import jax
import jax.numpy as jnp

from jaxviz.models.contract import Model, Taps


def tiny(seed=0, *, cin=3, classes=5, size=16, resizable=True, nan_above=None) -> Model:
    """conv3x3(6) -> ReLU (tap conv1) -> global mean -> dense (tap logits); any size if resizable.

    ``nan_above``: the logits become NaN once any pixel exceeds it (to test the NaN guard).
    """
    k = jax.random.split(jax.random.key(seed), 3)
    params = {"kernel": jax.random.normal(k[0], (3, 3, cin, 6)), "bias": 0.1 * jax.random.normal(k[1], (6,)),
              "dense": jax.random.normal(k[2], (6, classes))}

    def forward(p, x, deltas):
        taps = Taps(deltas)
        h = jax.lax.conv_general_dilated(x, p["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = taps("conv1", jax.nn.relu(h + p["bias"].reshape(1, 1, 1, -1)))
        out = h.mean(axis=(1, 2)) @ p["dense"]
        if nan_above is not None:
            out = jnp.where(x.max() > nan_above, jnp.nan, out)
        return taps("logits", out), taps.acts

    return Model(params=params, forward=forward, layers=("conv1", "logits"), input_shape=(size, size, cin),
                 name="tiny", resizable=resizable)


def dead_at_grey(size=16) -> Model:
    """One unit map ``relu(4 (mean colour - 0.75))`` (tap ``unit``): dead everywhere on a grey image."""

    def forward(p, x, deltas):
        taps = Taps(deltas)
        h = taps("unit", jax.nn.relu(p["gain"] * (x.mean(axis=-1, keepdims=True) - 0.75)))
        return taps("logits", h.mean(axis=(1, 2))), taps.acts

    return Model(params={"gain": jnp.float32(4.0)}, forward=forward, layers=("unit", "logits"), input_shape=(size, size, 3),
                 name="dead_at_grey", resizable=True)
