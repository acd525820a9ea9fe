"""Strict JAX settings for the whole suite: implicit rank promotion is an error."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="session")
def squeezenet_model():
    from jaxviz.models import squeezenet

    return squeezenet()


@pytest.fixture(scope="session")
def photos227():
    """chelsea and coffee as 227 px centre crops, (2, 227, 227, 3) in [0, 1]."""
    import numpy as np

    from jaxviz.data import photo, resize

    return np.stack([resize(photo("chelsea"), 227), resize(photo("coffee"), 227)])
