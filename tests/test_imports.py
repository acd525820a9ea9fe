"""Every module of the package imports (a moved or renamed module breaks this, not a user)."""

import importlib
import pkgutil

import pytest

import jaxviz

MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxviz.__path__, "jaxviz."))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)
