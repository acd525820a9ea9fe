"""Suite-wide settings: strict rank promotion, and one XLA compilation cache for the whole run.

The cache is a fresh folder per run, shared by the pytest-xdist workers and the notebook kernels (they
inherit ``JAX_COMPILATION_CACHE_DIR``), so a program compiled by one process is loaded by the others;
the controlling process removes it at the end.
"""

import os
import shutil
import tempfile

_XLA_CACHE = "JAX_COMPILATION_CACHE_DIR"
_OWN_CACHE = None  # the folder this process made (the controlling one), removed when it ends
if _XLA_CACHE not in os.environ and "PYTEST_XDIST_WORKER" not in os.environ:
    _OWN_CACHE = os.environ[_XLA_CACHE] = tempfile.mkdtemp(prefix="jaxviz-tests-xla-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402  (after the cache settings, which jax reads on import)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


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
