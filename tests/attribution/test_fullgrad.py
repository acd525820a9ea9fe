import jax
import jax.numpy as jnp
import numpy as np
from tiny_nets import conv, max_pool, tiny_cnn

import jaxviz.attribution as A


def _check_complete(terms, expect):
    total = terms.input_term.sum(axis=(1, 2, 3)) + sum(b.reshape(b.shape[0], -1).sum(1) for b in terms.bias_terms)
    np.testing.assert_allclose(terms.logits, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(total, expect, rtol=1e-4, atol=1e-5)


def test_fullgrad_completeness_relu_net(x8):
    m = tiny_cnn(seed=3)
    t = jnp.array([1, 2])
    terms = A.fullgrad_terms(m, x8, t)
    assert [b.shape for b in terms.bias_terms] == [(2, 8, 8, 4), (2, 4, 4, 5), (2, 4)]
    _check_complete(terms, m(x8)[jnp.arange(2), t])


def test_fullgrad_completeness_plain_function_with_offsets(x8):
    k = jax.random.split(jax.random.key(5), 3)
    w1, w2, w3 = jax.random.normal(k[0], (3, 3, 3, 6)), jax.random.normal(k[1], (3, 3, 6, 6)), jax.random.normal(k[2], (6, 3))
    mean = jnp.array([0.4, 0.5, 0.6])

    def f(x):  # preprocessing offset, biases, jax.nn.relu in a jit, max pooling
        h = (x - mean.reshape(1, 1, 1, 3)) * 2.0
        h = jax.jit(jax.nn.relu)(conv(h, w1, jnp.full((6,), 0.1)))
        h = max_pool(jnp.maximum(conv(h, w2) - 0.2, 0.0))
        return h.mean(axis=(1, 2)) @ w3 + 1.0

    terms = A.fullgrad_terms(f, x8, 0)
    assert len(terms.bias_terms) == 4
    _check_complete(terms, f(x8)[:, 0])


def _psi(m):
    m = np.abs(np.asarray(m, np.float64))
    axes = tuple(range(1, m.ndim))
    m = m - m.min(axis=axes, keepdims=True)
    return m / (m.max(axis=axes, keepdims=True) + 1e-6)


def test_fullgrad_map(cnn, x8):
    """The public map is psi(input term) + the resized psi of every spatial bias term (the authors' post-processing)."""
    s = jax.jit(A.fullgrad)(cnn, x8, 1)
    terms = A.fullgrad_terms(cnn, x8, 1)
    expect = _psi(terms.input_term).sum(-1)
    spatial = [b for b in terms.bias_terms if b.ndim == 4]
    assert len(spatial) == 2  # conv1 at 8x8, conv2 at 4x4; the dense bias is not mapped
    for b in spatial:
        expect = expect + np.asarray(jax.image.resize(_psi(b).sum(-1), (2, 8, 8), "linear"))
    assert s.shape == (2, 8, 8)
    np.testing.assert_allclose(s, expect, rtol=1e-4, atol=1e-5)
    assert not np.allclose(s[0], s[1])  # each example gets its own map
