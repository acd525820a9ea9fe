"""Every module of the package imports (a moved or renamed module breaks this, not a user)."""

import importlib
import pkgutil

import pytest

import jaxviz

MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxviz.__path__, "jaxviz."))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


def test_test_modules_have_unique_names():
    """pytest imports test files by their base name (no packages under tests/): two alike break collection."""
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in (Path(__file__).parent).rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names.most_common(3)


def test_benchmark_scripts_do_not_shadow_the_standard_library():
    """`python benchmarks/X.py` puts benchmarks/ first on sys.path: a script named like a standard module
    (inspect, profile, ...) would be imported in its place by numpy, torch or jax and break every script."""
    import sys
    from pathlib import Path

    scripts = {p.stem for p in (Path(__file__).parents[1] / "benchmarks").glob("*.py")}
    assert not scripts & set(sys.stdlib_module_names), scripts & set(sys.stdlib_module_names)
