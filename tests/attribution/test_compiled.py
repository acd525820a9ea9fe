"""Eager calls of the attribution methods compile once per shape and settings, and still validate values."""

import jax
import numpy as np
import pytest
from tiny_nets import tiny_cnn

from jaxviz import attribution as A
from jaxviz.attribution import _common as C
from jaxviz.errors import JaxvizError, TargetError


def test_second_eager_call_reuses_the_compiled_program(cnn, x8):
    def sg(x):
        return A.smoothgrad(A.gradient, cnn, x, [0, 3], key=jax.random.key(0), samples=3, chunk_size=2)

    first = sg(x8)
    programs = C._run_compiled._cache_size()
    second = sg(x8 * 0.5)  # new pixels, same shapes and settings
    assert C._run_compiled._cache_size() == programs
    assert not np.allclose(np.asarray(first), np.asarray(second))
    A.smoothgrad(A.gradient, cnn, x8, [0, 3], key=jax.random.key(0), samples=4, chunk_size=2)  # new setting
    assert C._run_compiled._cache_size() == programs + 1


def test_compiled_eager_call_equals_the_traced_method(cnn, x8):
    eager = A.integrated_gradients(cnn, x8, 1, steps=6, chunk_size=4)
    traced = jax.jit(lambda m, x: A.integrated_gradients(m, x, 1, steps=6, chunk_size=4))(cnn, x8)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(traced), rtol=1e-6, atol=1e-7)


def test_values_are_still_checked_before_compiling(cnn, x8):
    with pytest.raises(TargetError, match="out of range"):
        A.gradient(cnn, x8, [0, 9])
    with pytest.raises(JaxvizError, match="NaN"):
        A.occlusion(cnn, x8.at[0, 0, 0, 0].set(np.nan), 0, window=4, stride=2)


def test_unhashable_setting_runs_op_by_op(cnn, x8):
    fill = [0.5, 0.5, 0.5]  # a list is not hashable: no compilation, same answer
    got = A.occlusion(cnn, x8, 0, window=4, stride=2, fill=fill).prob
    want = A.occlusion(cnn, x8, 0, window=4, stride=2, fill=(0.5, 0.5, 0.5)).prob
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4)


def test_eager_calls_trace_a_model_for_its_logits_shape_once(cnn, x8):
    A.gradient(cnn, x8, [0, 3])
    traced = C._abstract_logits.cache_info().misses
    A.gradient(cnn, x8 * 0.5, [1, 2])  # same model and shapes: the output shape is remembered
    assert C._abstract_logits.cache_info().misses == traced
    with pytest.raises(TargetError, match="out of range"):  # a model with fewer classes is traced anew, and checked
        A.gradient(tiny_cnn(classes=3), x8, [0, 3])
    assert C._abstract_logits.cache_info().misses == traced + 1
