"""Fixtures of the feature-visualisation tests."""

import pytest
from fv_models import tiny


@pytest.fixture(scope="module")
def net():
    return tiny()
